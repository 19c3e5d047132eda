import type { CoverageQuery, FraudSignal } from './inputs.ts'
import type { Scan } from './aggregate.ts'
import { cmp } from './windows.ts'

/**
 * Anti-fraud signals over the scans of one grid-day (reference for the SQL).
 * Signals are evidence for a supervisor, not verdicts: apart from implausible
 * clocks (untimeable) and, when configured, foreign devices, flagged scans
 * still count as visits.
 */
export function fraudSignals(q: CoverageQuery, scans: readonly Scan[]): FraudSignal[] {
  const out: FraudSignal[] = []
  const coords = new Map(q.checkpoints.filter((c) => c.lat !== undefined && c.lon !== undefined).map((c) => [c.id, c]))
  const byDevice = groupBy(scans, (s) => s.row.deviceId)
  for (const list of byDevice.values()) {
    const timed = list.filter((s) => s.plausible).sort(byAt)
    for (let i = 1; i < timed.length; i++) {
      const a = timed[i - 1]
      const b = timed[i]
      if (!a || !b || a.checkpointId === null || b.checkpointId === null) continue
      const dt = b.at - a.at
      if (a.checkpointId === b.checkpointId) {
        if (dt < q.rescanMs) {
          out.push(signal('rescan', b, [a.checkpointId], [a, b], { seconds: Math.round(dt / 1000) }))
        }
        continue
      }
      const ca = coords.get(a.checkpointId)
      const cb = coords.get(b.checkpointId)
      if (!ca || !cb) continue
      const meters = haversineMeters(ca.lat ?? 0, ca.lon ?? 0, cb.lat ?? 0, cb.lon ?? 0)
      const allowed = (q.maxSpeedKmh / 3.6) * (dt / 1000) + q.travelSlackMeters
      if (meters > allowed) {
        const kmh = dt > 0 ? Math.round((meters / (dt / 1000)) * 3.6 * 10) / 10 : -1
        out.push(signal('impossible_travel', b, [a.checkpointId, b.checkpointId], [a, b], { meters: Math.round(meters), seconds: Math.round(dt / 1000), kmh }))
      }
    }
    const foreign = list.filter((s) => s.foreign).sort(byAt)
    const f0 = foreign[0]
    if (f0) out.push(signal('foreign_device', f0, checkpointsOf(foreign), foreign, { assignedGrid: f0.row.deviceGridId ?? '' }))
    const bad = list.filter((s) => !s.plausible).sort(byAt)
    const b0 = bad[0]
    if (b0) {
      const worst = Math.max(...bad.map((s) => Math.abs(s.at - s.row.receivedAt)))
      out.push(signal('clock_implausible', b0, checkpointsOf(bad), bad, { worstSkewSeconds: Math.round(worst / 1000) }))
    }
    // Scans the plan places at no checkpoint. Resolved by the ingest to a checkpoint (a tag, or a GPS
    // fix in its geofence) that is not the plan's, typically a neighbouring grid's: per checkpoint,
    // with its grid in the registry. Not resolved: per tag an unknown tag; without a tag, GPS
    // check-ins the ingest found in no geofence (their first fix, and the plan's checkpoint nearest to it).
    const unplaced = list.filter((s) => s.checkpointId === null)
    for (const [checkpointId, resolved] of groupBy(unplaced.filter(isResolved), (s) => s.row.checkpointId as string)) {
      const sorted = [...resolved].sort(byAt)
      const u0 = sorted[0]
      if (!u0) continue
      const gridId = u0.row.checkpointGridId
      out.push(signal('unplanned_checkpoint', u0, [], sorted, gridId === undefined || gridId === null ? { checkpointId } : { checkpointId, gridId }))
    }
    for (const [tag, tagged] of groupBy(unplaced.filter((s) => !isResolved(s)), (s) => s.row.tagId)) {
      const sorted = [...tagged].sort(byAt)
      const u0 = sorted[0]
      if (!u0) continue
      if (tag !== '') out.push(signal('unknown_tag', u0, [], sorted, { tagId: tag }))
      else {
        const fix = sorted.find((s) => s.row.lat !== undefined && s.row.lat !== null && s.row.lon !== undefined && s.row.lon !== null)
        out.push(signal('outside_geofence', u0, [], sorted, outsideGeofenceDetail(q, fix ? { lat: fix.row.lat as number, lon: fix.row.lon as number } : null)))
      }
    }
  }
  return out.sort(bySignal)
}

/**
 * An `outside_geofence` signal's detail (reference and SQL alike): the first fix
 * (`lat`, `lon`) and the plan's checkpoint with coordinates nearest to it
 * (`nearestCheckpoint`, `meters` from its centre, rounded; ties to the smaller id),
 * when it has one. No fix (GPS check-ins stored without one): no fields.
 */
export function outsideGeofenceDetail(q: CoverageQuery, fix: { lat: number; lon: number } | null): FraudSignal['detail'] {
  if (!fix) return {}
  let best: { id: string; meters: number } | undefined
  for (const c of q.checkpoints) {
    if (c.lat === undefined || c.lon === undefined) continue
    const meters = haversineMeters(fix.lat, fix.lon, c.lat, c.lon)
    if (!best || meters < best.meters || (meters === best.meters && cmp(c.id, best.id) < 0)) best = { id: c.id, meters }
  }
  return best ? { lat: fix.lat, lon: fix.lon, nearestCheckpoint: best.id, meters: Math.round(best.meters) } : { lat: fix.lat, lon: fix.lon }
}

/** A scan the ingest resolved to a checkpoint (check_ins.checkpoint_id set). */
function isResolved(s: Scan): boolean {
  return s.row.checkpointId !== undefined && s.row.checkpointId !== null
}

function signal(kind: FraudSignal['kind'], lead: Scan, checkpointIds: string[], scans: readonly Scan[], detail: FraudSignal['detail']): FraudSignal {
  return {
    kind,
    deviceId: lead.row.deviceId,
    badge: lead.row.badge ?? null,
    checkpointIds,
    checkinIds: scans.map((s) => s.row.id),
    at: lead.plausible ? lead.at : lead.row.receivedAt,
    detail,
  }
}

function checkpointsOf(scans: readonly Scan[]): string[] {
  return [...new Set(scans.map((s) => s.checkpointId).filter((c): c is string => c !== null))].sort(cmp)
}

export function byAt(a: Scan, b: Scan): number {
  return a.at - b.at || cmp(a.row.id, b.row.id)
}

export function bySignal(a: FraudSignal, b: FraudSignal): number {
  return a.at - b.at || cmp(a.kind, b.kind) || cmp(a.deviceId, b.deviceId) || cmp(a.checkinIds[0] ?? '', b.checkinIds[0] ?? '')
}

export function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>()
  for (const it of items) {
    const k = key(it)
    const list = m.get(k)
    if (list) list.push(it)
    else m.set(k, [it])
  }
  return new Map([...m.entries()].sort((a, b) => cmp(a[0], b[0])))
}

/** Great-circle distance in meters (mean Earth radius). */
export function haversineMeters(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180
  const dLat = (lat2 - lat1) * rad
  const dLon = (lon2 - lon1) * rad
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2
  return 2 * 6_371_008.8 * Math.asin(Math.min(1, Math.sqrt(h)))
}
