// Migration 041 (uplink_seen.received_at: BRIN instead of a btree; watermark from
// device_state) on a data directory written before it: the watermark and
// coverage.touched give the same answers before and after, and writes go on.
import t from 'tap'
import type { CheckInRecord } from '../../src/store/types.ts'
import { openStore } from '../../src/store/index.ts'
import { embeddedMigratedWith, silentLog } from '../helpers/store.ts'

const T0 = Date.UTC(2026, 0, 5)
const R0 = Date.UTC(2026, 0, 6)
const ci = (seq: number, deviceTimeMs: number, receivedAtMs: number): CheckInRecord => ({
  kind: 'checkin', deviceId: 'up-dev', seq, deviceTimeMs, receivedAtMs, clockFuture: false, clockAncient: false,
  tagId: 'UP-TAG', method: 'nfc', checkpointId: null, gridId: null,
})

t.test('embedded: 030 → 041 keeps the watermark and touched', async (t) => {
  // before 041 (and with 050: touched() reads clock_offsets.seq)
  const { dataDir, db } = await embeddedMigratedWith(t, 'gp-up041', (f) => /^0[0-3]\d-.*\.sql$/.test(f) || f === '050-clock-offset-seq.sql')
  await db.close()

  const store = await openStore({ dataDir, databaseUrl: undefined }, silentLog)
  t.teardown(() => store.close())
  await store.uplinks.write({ records: [ci(1, T0, R0 + 1_000), ci(2, T0 + 60_000, R0 + 2_000), ci(3, T0 + 120_000, R0 + 3_000)] })
  const before = { w: await store.watermark.current(), touched: await store.coverage.touched(R0 + 1_000, R0 + 3_000) }
  t.equal(before.w, R0 + 3_000)
  const report = await store.migrate()
  t.ok(report.applied.includes('041-uplink-seen-brin'), 'migration 041 applied')
  t.equal(await store.watermark.current(), before.w, 'same watermark on the old rows')
  t.same(await store.coverage.touched(R0 + 1_000, R0 + 3_000), before.touched, 'same touched on the old rows')
  t.same(before.touched, [{ tag: 'UP-TAG', deviceGridId: null, fromMs: T0 + 60_000, toMs: T0 + 120_000, firstAtMs: T0 + 60_000 }])
  const r = await store.uplinks.write({ records: [ci(3, T0 + 120_000, R0 + 9_000), ci(4, T0 + 180_000, R0 + 4_000)] })
  t.same(r.outcomes, ['duplicate', 'new'], 'dedup across the upgrade')
  t.equal(await store.watermark.current(), R0 + 4_000)
  t.same(await store.coverage.touched(R0 + 3_000, R0 + 4_000), [{ tag: 'UP-TAG', deviceGridId: null, fromMs: T0 + 180_000, toMs: T0 + 180_000, firstAtMs: T0 + 180_000 }])
  t.equal(await store.uplinks.pruneSeen(R0 + 2_500), 2, 'the prune reads the BRIN')
})
