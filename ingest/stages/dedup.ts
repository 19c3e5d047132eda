import type { UplinkRecord } from '../../src/store/types.ts'
import type { Work } from '../types.ts'

/**
 * Remembers recently committed (device, seq) → device time, so a redelivery or
 * a re-uploaded batch skips the database. Exactness does not depend on it: the
 * store's uplink_seen key decides inside the transaction. Entries are added
 * only after their commit.
 */
export class RecentKeys {
  private map = new Map<string, number>()
  constructor(private capacity = 100_000) {}

  get(r: UplinkRecord): number | undefined {
    return this.map.get(`${r.deviceId}\u0000${r.seq}`)
  }

  remember(records: UplinkRecord[]): void {
    for (const r of records) {
      const k = `${r.deviceId}\u0000${r.seq}`
      this.map.delete(k)
      this.map.set(k, r.deviceTimeMs)
    }
    // Map iteration order is insertion order: drop the oldest (checked first: no
    // iterator per call while under capacity).
    if (this.map.size <= this.capacity) return
    for (const k of this.map.keys()) {
      if (this.map.size <= this.capacity) break
      this.map.delete(k)
    }
  }
}

/** Drops records already known committed with the same device time (a conflict still goes to the store). */
export function dedup(w: Work, recent: RecentKeys): void {
  // No new array unless something is dropped (the common case keeps every record).
  let keep: UplinkRecord[] | undefined
  for (let i = 0; i < w.records.length; i++) {
    const r = w.records[i] as UplinkRecord
    if (recent.get(r) === r.deviceTimeMs) {
      w.knownDuplicates++
      keep ??= w.records.slice(0, i)
    } else keep?.push(r)
  }
  if (keep) w.records = keep
}
