import type { UplinkRecord } from '../../src/store/types.ts'
import type { Work } from '../types.ts'

/**
 * Remembers recently committed (device, seq) → device time, so a redelivery or
 * a re-uploaded batch skips the database. Exactness does not depend on it: the
 * store's uplink_seen key decides inside the transaction. Entries are added
 * only after their commit.
 *
 * No string key per message: device id → (seq → device time), and a ring of the
 * keys in the order they were added bounds the entries to `capacity` (the oldest
 * key goes first). A key is in the ring once: remembering a key already held only
 * updates its device time.
 */
export class RecentKeys {
  private devices = new Map<string, Map<number, number>>()
  private ringDevice: Array<string | undefined>
  private ringSeq: Float64Array
  private next = 0
  private count = 0

  constructor(private capacity = 100_000) {
    this.ringDevice = new Array<string | undefined>(capacity).fill(undefined)
    this.ringSeq = new Float64Array(capacity)
  }

  get(r: UplinkRecord): number | undefined {
    return this.devices.get(r.deviceId)?.get(r.seq)
  }

  get size(): number {
    return this.count
  }

  remember(records: readonly UplinkRecord[], outcomes?: readonly string[]): void {
    if (this.capacity <= 0) return
    for (let i = 0; i < records.length; i++) {
      // Only what the store holds: not a seq conflict (same key, another device time), nor a record without an outcome.
      if (outcomes !== undefined && outcomes[i] !== 'new' && outcomes[i] !== 'duplicate') continue
      const r = records[i] as UplinkRecord
      let seqs = this.devices.get(r.deviceId)
      if (seqs === undefined) this.devices.set(r.deviceId, (seqs = new Map()))
      else if (seqs.has(r.seq)) {
        seqs.set(r.seq, r.deviceTimeMs)
        continue
      }
      seqs.set(r.seq, r.deviceTimeMs)
      if (this.count === this.capacity) this.evict(this.next)
      else this.count++
      this.ringDevice[this.next] = r.deviceId
      this.ringSeq[this.next] = r.seq
      this.next = this.next + 1 === this.capacity ? 0 : this.next + 1
    }
  }

  private evict(slot: number): void {
    const device = this.ringDevice[slot] as string
    const seqs = this.devices.get(device)
    if (seqs === undefined) return
    seqs.delete(this.ringSeq[slot] as number)
    if (seqs.size === 0) this.devices.delete(device)
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
