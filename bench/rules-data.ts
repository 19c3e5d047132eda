// The rules benches' day of check-ins (bench/rules.ts, bench/rules-setbased.ts): N grids ×
// 20 checkpoints × 12 two-hour windows, one scan per (checkpoint, window) with 3 % left out,
// from the same seeded draws everywhere, so every bench measures the same rows.
import { prng } from '../test/rules/store/generate.ts'
import type { CheckInRecord, Store } from '../src/store/types.ts'

export const DATE = '2024-06-04'
export const CPS = 20
export const dayStart = Date.parse(`${DATE}T00:00:00+08:00`)

/** Sequence numbers of the day `daysBefore` days before DATE start past this × daysBefore (DATE's own: 1, 2, …). */
const SEQ_PER_DAY = 1_000_000_000

/**
 * The day's check-ins of `grids` grids (device d<g>, badge p<g>, checkpoint g<g>-c<j>, tag g<g>-t<j>).
 * `daysBefore` > 0: the same layout on an earlier day (its own draws and sequence numbers), for
 * benches with more than one day stored; DATE's rows (daysBefore 0) are the same either way.
 */
export function* dayCheckins(grids: number, daysBefore = 0): Generator<CheckInRecord> {
  const r = prng(daysBefore === 0 ? grids : grids + daysBefore * 7919)
  let seq = daysBefore * SEQ_PER_DAY
  const start = dayStart - daysBefore * 86_400_000
  for (let g = 0; g < grids; g++) {
    for (let w = 0; w < 12; w++) {
      for (let j = 0; j < CPS; j++) {
        if (r() < 0.03) continue
        const at = start + w * 7_200_000 + Math.floor(r() * 7_000) * 1000
        yield { kind: 'checkin', deviceId: `d${g}`, seq: ++seq, deviceTimeMs: at, receivedAtMs: at + 3000, clockFuture: false, clockAncient: false, tagId: `g${g}-t${j}`, method: 'nfc', checkpointId: `g${g}-c${j}`, gridId: `g${g}`, badgeId: `p${g}` }
      }
    }
  }
}

/** Writes the day (`daysBefore` days before DATE) through the product write path in batches of 5,000; returns the rows inserted. */
export async function writeDayCheckins(store: Store, grids: number, daysBefore = 0): Promise<number> {
  let inserted = 0
  let batch: CheckInRecord[] = []
  for (const rec of dayCheckins(grids, daysBefore)) {
    batch.push(rec)
    if (batch.length === 5000) {
      inserted += (await store.uplinks.write({ records: batch })).inserted
      batch = []
    }
  }
  if (batch.length) inserted += (await store.uplinks.write({ records: batch })).inserted
  return inserted
}
