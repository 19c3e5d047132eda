import type { ClockOffset } from './inputs.ts'

/** The clock offset (ms, device minus server) that times a device's row `seq`: `at = deviceTime - offset`. */
export type OffsetLookup = (deviceId: string, seq: number) => number

/**
 * The per-period offset rule (inputs.ts: time basis). For a row of `deviceId` with
 * `seq`: among that device's measurements with a `seq` (the seq of the time-sync
 * acknowledgement) at or after the row's, the one with the smallest seq — the first
 * sync after the row measured the clock the row was stamped with; when there is
 * none, the device's latest measurement (largest `measuredAt`; among measurements
 * without `measuredAt`, or tied, the last in array order); when the device has no
 * measurement, 0. Offsets are used as given (no rounding).
 *
 * Built once per call: grouped per device, sorted by seq, a binary search per row.
 */
export function offsetLookup(offsets: readonly ClockOffset[]): OffsetLookup {
  const latest = new Map<string, ClockOffset>()
  const bySeq = new Map<string, Array<{ seq: number; offsetMs: number }>>()
  for (const o of offsets) {
    const prev = latest.get(o.deviceId)
    if (!prev || (o.measuredAt ?? -Infinity) >= (prev.measuredAt ?? -Infinity)) latest.set(o.deviceId, o)
    if (typeof o.seq === 'number') {
      const list = bySeq.get(o.deviceId) ?? []
      list.push({ seq: o.seq, offsetMs: o.offsetMs })
      bySeq.set(o.deviceId, list)
    }
  }
  // Stable sort: of two measurements with one seq (not expected: seqs are never reused), the first given wins.
  for (const list of bySeq.values()) list.sort((a, b) => a.seq - b.seq)
  return (deviceId, seq) => {
    const list = bySeq.get(deviceId)
    if (list) {
      // first index with list[i].seq >= seq
      let lo = 0
      let hi = list.length
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if ((list[mid] as { seq: number }).seq < seq) lo = mid + 1
        else hi = mid
      }
      const hit = list[lo]
      if (hit) return hit.offsetMs
    }
    return latest.get(deviceId)?.offsetMs ?? 0
  }
}
