// Migration 070 (clock_offsets.source) on data written before it: every earlier row
// is a time-sync measurement (source NULL) and stays one — latest(), the rows' timing
// (touched) and history() read it as before — and a step boundary can follow it.
// Embedded and, with DATABASE_URL, server.
import t, { type Test } from 'tap'
import type { Db } from '../../src/store/db.ts'
import type { CheckInRecord, Store } from '../../src/store/types.ts'
import { upgradeBothDrivers } from '../helpers/store.ts'

const before070 = (f: string) => /^0[0-6]\d-.*\.sql$/.test(f)
const T0 = Date.UTC(2026, 0, 5, 1)
const MIN = 60_000
const iso = (ms: number) => new Date(ms).toISOString()
const ci = (seq: number, trueAt: number, offsetMs: number): CheckInRecord => ({
  kind: 'checkin', deviceId: 'up70-dev', seq, deviceTimeMs: trueAt + offsetMs, receivedAtMs: trueAt + 1_000, clockFuture: false, clockAncient: false,
  tagId: 'UP70-TAG', method: 'nfc', checkpointId: null, gridId: null,
})

/** A measurement as the release before 070 stored it: +2 min, acknowledged with seq 3 at T0 + 30 min. */
async function seedOld(db: Db): Promise<void> {
  await db.query(`INSERT INTO clock_offsets (device_id, measured_at, offset_ms, delay_ms, command_id, seq) VALUES ('up70-dev', $1, $2, 40, 'up70-sync', 3)`, [iso(T0 + 30 * MIN), 2 * MIN])
}

async function check(t: Test, store: Store): Promise<void> {
  const report = await store.migrate()
  t.ok(report.applied.includes('070-clock-offset-source'), 'migration 070 applied')
  t.match(await store.clock.latest('up70-dev'), { offsetMs: 2 * MIN, delayMs: 40, commandId: 'up70-sync', seq: 3, stepSuspectedAt: null }, 'the old row is a measurement')
  t.same((await store.clock.history('up70-dev')).map((r) => r.source), ['sync'])
  // rows 4–5 recorded on the +2 min clock, then it jumped to +5 min: the boundary keeps them on +2 min
  await store.uplinks.write({ records: [ci(4, T0 + 40 * MIN, 2 * MIN), ci(5, T0 + 50 * MIN, 2 * MIN), ci(6, T0 + 60 * MIN, 5 * MIN)] })
  t.equal(await store.clock.recordStep({ deviceId: 'up70-dev', seq: 5, estimateMeasuredAtMs: T0 + 30 * MIN, atMs: T0 + 61 * MIN }), true, 'a boundary after the old measurement')
  t.match(await store.clock.latest('up70-dev'), { commandId: 'up70-sync', stepSuspectedAt: new Date(T0 + 61 * MIN) }, 'latest is still the measurement, a step pending')
  const touched = await store.coverage.touched(T0 + 60 * MIN, T0 + 62 * MIN)
  t.same(touched.map((x) => x.firstAtMs), [T0 + 40 * MIN], "the boundary re-times nothing: the earliest row still at its true time")
}

upgradeBothDrivers(t, '060 → 070 keeps earlier measurements as measurements', 'gp-up070', before070, seedOld, check)
