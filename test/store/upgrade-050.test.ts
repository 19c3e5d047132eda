// Migration 050 (clock_offsets.seq) on a data directory written before it: each
// earlier measurement gets the seq of the ack it came from (command_acks, by
// command id), so rows recorded before a device stepped its clock keep the offset
// of the sync that followed them (queries/clock.ts) on upgraded data too.
import t from 'tap'
import type { CheckInRecord } from '../../src/store/types.ts'
import { openStore } from '../../src/store/index.ts'
import { embeddedMigratedWith, silentLog } from '../helpers/store.ts'

const T0 = Date.UTC(2026, 0, 5, 1)
const MIN = 60_000
const ci = (seq: number, trueAt: number, offsetMs: number): CheckInRecord => ({
  kind: 'checkin', deviceId: 'up50-dev', seq, deviceTimeMs: trueAt + offsetMs, receivedAtMs: trueAt + 1_000, clockFuture: false, clockAncient: false,
  tagId: 'UP50-TAG', method: 'nfc', checkpointId: null, gridId: null,
})
const iso = (ms: number) => new Date(ms).toISOString()

t.test('embedded: 041 → 050 gives earlier measurements their ack seq', async (t) => {
  const { dataDir, db } = await embeddedMigratedWith(t, 'gp-up050', (f) => /^0[0-4]\d-.*\.sql$/.test(f))
  // two syncs as the old ingest stored them (no seq): +40 min acknowledged with seq 3, 0 with seq 6
  for (const [cmd, seq, at, off] of [['s1', 3, T0 + 30 * MIN, 40 * MIN], ['s2', 6, T0 + 90 * MIN, 0]] as const) {
    await db.query(
      `INSERT INTO command_acks (device_id, seq, device_time, received_at, command_id, status) VALUES ('up50-dev', $1, $2, $3, $4, 'ok')`,
      [seq, iso(at + off), iso(at), cmd],
    )
    await db.query(`INSERT INTO clock_offsets (device_id, measured_at, offset_ms, delay_ms, command_id) VALUES ('up50-dev', $1, $2, 0, $3)`, [iso(at), off, cmd])
  }
  await db.close()

  const store = await openStore({ dataDir, databaseUrl: undefined }, silentLog)
  t.teardown(() => store.close())
  // a row recorded on the fast clock before the first sync, one after the step before the second
  await store.uplinks.write({ records: [ci(1, T0, 40 * MIN), ci(4, T0 + 60 * MIN, 0)] })
  const report = await store.migrate()
  t.ok(report.applied.includes('050-clock-offset-seq'), 'migration 050 applied')
  const touched = await store.coverage.touched(T0, T0 + 2 * 60 * MIN)
  t.same(touched, [{ tag: 'UP50-TAG', deviceGridId: null, fromMs: T0 + 40 * MIN, toMs: T0 + 60 * MIN, firstAtMs: T0 }], 'the first row timed by the +40 min sync after it, not the latest 0')
})
