// GPS check-ins (READ_METHOD_GPS, PROTOCOL.md §3.2): the checkpoint is the
// geofence of the device's grid that contains the fix. Pure.

export interface Geofence {
  checkpointId: string
  lat: number
  lon: number
  radiusM: number
}

/** A fix less precise than this never proves presence at a checkpoint. */
export const MAX_FIX_ACCURACY_M = 100

const EARTH_RADIUS_M = 6_371_008.8
const rad = (deg: number) => (deg * Math.PI) / 180

/** Great-circle distance in metres (haversine). */
export function distanceM(aLat: number, aLon: number, bLat: number, bLon: number): number {
  const dLat = rad(bLat - aLat)
  const dLon = rad(bLon - aLon)
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(aLat)) * Math.cos(rad(bLat)) * Math.sin(dLon / 2) ** 2
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)))
}

/**
 * The checkpoint whose geofence contains the fix (the nearest centre when
 * fences overlap), or null: outside every fence, or the fix is too imprecise.
 * Ties on distance go to the smaller checkpoint id, so the answer is stable.
 */
export function matchGeofence(fences: readonly Geofence[], fix: { lat: number; lon: number; accuracyM?: number | undefined }): string | null {
  if (fix.accuracyM !== undefined && fix.accuracyM > MAX_FIX_ACCURACY_M) return null
  let best: { id: string; d: number } | null = null
  for (const f of fences) {
    const d = distanceM(fix.lat, fix.lon, f.lat, f.lon)
    if (d > f.radiusM) continue
    if (!best || d < best.d || (d === best.d && f.checkpointId < best.id)) best = { id: f.checkpointId, d }
  }
  return best?.id ?? null
}
