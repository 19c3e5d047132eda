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
    // Map iteration order is insertion order: drop the oldest.
    for (const k of this.map.keys()) {
      if (this.map.size <= this.capacity) break
      this.map.delete(k)
    }
  }
}

/** Drops records already known committed with the same device time (a conflict still goes to the store). */
export function dedup(w: Work, recent: RecentKeys): void {
  const keep: UplinkRecord[] = []
  for (const r of w.records) {
    if (recent.get(r) === r.deviceTimeMs) w.knownDuplicates++
    else keep.push(r)
  }
  w.records = keep
}
