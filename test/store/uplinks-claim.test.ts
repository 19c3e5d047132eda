// The group statement's two ways of claiming keys (src/store/queries/uplinks.ts):
// optimistic (plain INSERT, a stored key fails the statement) and claiming
// (ON CONFLICT). Both must store the same rows and the same latest state, on
// both drivers; a stored key in an optimistic group falls back without losing
// or doubling anything, and switches the next groups to claiming for a while.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { Db } from '../../src/store/db.ts'
import { openPg } from '../../src/store/drivers/pg.ts'
import { openPglite } from '../../src/store/drivers/pglite.ts'
import { migrate } from '../../src/store/migrate.ts'
import { ClaimMode, writeBatch } from '../../src/store/queries/uplinks.ts'
import type { UplinkRecord, WriteBatch } from '../../src/store/types.ts'
import { makeTestDatabase } from '../helpers/db.ts'
import { silentLog } from '../helpers/store.ts'

const T0 = Date.UTC(2026, 0, 5)

/** Every kind and optional field, for device `d`; seqs from `s0`. */
function group(d: string, s0: number): WriteBatch {
  const base = { deviceId: d, receivedAtMs: T0 + 5_000, clockFuture: false, clockAncient: false }
  const reading = (metric: string, value: number, at: number) => ({ metric, value, unit: 'm', deviceTimeMs: at, clockFuture: false, clockAncient: true })
  const records: UplinkRecord[] = [
    { ...base, kind: 'checkin', seq: s0, deviceTimeMs: T0, tagId: 'a"b\\c', method: 'nfc', checkpointId: 'cp-1', gridId: 'g-1', lat: 1.5, lon: -2.25, accuracyM: 3, badgeId: '工号', batteryPct: 70 },
    { ...base, kind: 'checkin', seq: s0 + 1, deviceTimeMs: T0 + 1000, tagId: 'T2', method: 'qr', checkpointId: null, gridId: null, clockFuture: true },
    { ...base, kind: 'telemetry', seq: s0 + 2, deviceTimeMs: T0 + 2000, readings: [reading('water_level', 1.25, T0 + 2000), reading('water_level', 2, T0 + 2500)] },
    { ...base, kind: 'status', seq: s0 + 3, deviceTimeMs: T0 + 3000, batteryPct: 55, batteryMv: 3700, signalDbm: -70, firmwareVersion: '1.2.3', uptimeS: 99, bufferedCount: 4, bootCount: 2, lat: 1, lon: 2 },
    { ...base, kind: 'alarm', seq: s0 + 4, deviceTimeMs: T0 + 4000, alarmKind: 'sos', lat: 1, lon: 2, badgeId: 'b', detail: 'help' },
  ]
  return { records, presence: [{ deviceId: d, receivedAtMs: T0 + 6_000, online: true, reason: 'connect' }] }
}
const checkInsOnly = (d: string, s0: number, n: number): WriteBatch => ({
  records: Array.from({ length: n }, (_, i) => ({
    kind: 'checkin' as const, deviceId: d, seq: s0 + i, deviceTimeMs: T0 + (s0 + i) * 1000, receivedAtMs: T0 + 60_000, clockFuture: false, clockAncient: false,
    tagId: `T${i}`, method: 'nfc', checkpointId: i % 2 ? `cp-${i}` : null, gridId: 'g', batteryPct: 90 - i,
  })),
})

/** What a device's rows look like, device id left out. */
async function stored(db: Db, d: string): Promise<unknown> {
  const q = (sql: string) => db.query(sql, [d])
  return {
    seen: await q('SELECT seq, device_time, kind, received_at FROM uplink_seen WHERE device_id = $1 ORDER BY seq'),
    checkIns: await q(`SELECT seq, device_time, received_at, grid_id, checkpoint_id, tag_id, method, lat, lon, accuracy_m, badge_id, battery_pct,
      clock_future, clock_ancient, unknown_tag FROM check_ins WHERE device_id = $1 ORDER BY seq`),
    telemetry: await q('SELECT seq, idx, device_time, received_at, metric, value, unit, clock_future, clock_ancient FROM telemetry WHERE device_id = $1 ORDER BY seq, idx'),
    status: await q(`SELECT seq, device_time, battery_pct, battery_mv, signal_dbm, firmware_version, uptime_s, buffered_count, boot_count, lat, lon
      FROM device_status WHERE device_id = $1 ORDER BY seq`),
    alarms: await q('SELECT seq, device_time, kind, lat, lon, badge_id, detail FROM alarms WHERE device_id = $1 ORDER BY seq'),
    presence: await q('SELECT received_at, online, reason FROM device_presence WHERE device_id = $1'),
    state: await q('SELECT online, presence_at, last_seen_at, last_seq, battery_pct, status_at FROM device_state WHERE device_id = $1'),
  }
}

function suite(t: Test, getDb: () => Db): void {
  const claiming = () => {
    const m = new ClaimMode(1e12)
    m.sawStoredKey()
    return m
  }
  t.test('optimistic and claiming statements store the same rows', async (t) => {
    const db = getDb()
    const opt = new ClaimMode()
    t.equal(opt.optimistic, true)
    for (const [d, mode] of [['dev-opt', opt], ['dev-claim', claiming()]] as const) {
      const r1 = await writeBatch(db, group(d, 1), mode)
      t.same(r1.outcomes, ['new', 'new', 'new', 'new', 'new'], d)
      const r2 = await writeBatch(db, checkInsOnly(d, 100, 5), mode) // the fused check-ins-only statement
      t.equal(r2.inserted, 5, d)
    }
    t.equal(opt.optimistic, true, 'no stored key met: still optimistic')
    t.same(await stored(db, 'dev-opt'), await stored(db, 'dev-claim'))
    t.match(await stored(db, 'dev-opt'), { checkIns: { length: 7 }, telemetry: { length: 2 }, status: { length: 1 }, alarms: { length: 1 }, presence: { length: 1 } })
  })

  t.test('device_state: per-device aggregates built in JS for an optimistic group equal the SQL aggregate of a claiming one', async (t) => {
    const db = getDb()
    // Battery ties on device time (the higher seq wins), an older device time with a later seq,
    // records without battery, the latest receipt time not on the last record; two devices interleaved in the batch.
    const recs = (d: string): UplinkRecord[] => {
      const base = { deviceId: d, clockFuture: false, clockAncient: false, receivedAtMs: T0 + 8_000 }
      const ci = { ...base, kind: 'checkin' as const, method: 'nfc', tagId: 'T', checkpointId: null, gridId: null }
      return [
        { ...ci, seq: 3, deviceTimeMs: T0 + 1_000, batteryPct: 99 },
        { ...ci, seq: 1, deviceTimeMs: T0 + 5_000, batteryPct: 40 },
        { ...base, kind: 'status', seq: 2, deviceTimeMs: T0 + 5_000, batteryPct: 41, receivedAtMs: T0 + 9_000 },
        { ...base, kind: 'telemetry', seq: 4, deviceTimeMs: T0 + 9_000, readings: [] },
        { ...ci, seq: 5, deviceTimeMs: T0 + 7_000 },
      ]
    }
    const interleave = (d: string, e: string) => recs(d).flatMap((r, i) => [r, recs(e)[i] as UplinkRecord])
    await writeBatch(db, { records: interleave('agg-opt-a', 'agg-opt-b') }, new ClaimMode())
    await writeBatch(db, { records: interleave('agg-claim-a', 'agg-claim-b') }, claiming())
    const state = (d: string) =>
      db.query<{ last_seen_at: Date; last_seq: number; battery_pct: number; status_at: Date }>(
        'SELECT last_seen_at, last_seq, battery_pct, status_at FROM device_state WHERE device_id = $1',
        [d],
      )
    t.same(await state('agg-opt-a'), [{ last_seen_at: new Date(T0 + 9_000), last_seq: 5, battery_pct: 41, status_at: new Date(T0 + 5_000) }])
    for (const x of ['a', 'b']) t.same(await stored(db, `agg-opt-${x}`), await stored(db, `agg-claim-${x}`), x)
    // A later group with only older battery readings keeps the state (the upsert's GREATEST/CASE, unchanged).
    const older = (d: string): WriteBatch => ({ records: [{ ...recs(d)[0]!, seq: 6, deviceTimeMs: T0, receivedAtMs: T0 + 1_000 }] as UplinkRecord[] })
    await writeBatch(db, older('agg-opt-a'), new ClaimMode())
    await writeBatch(db, older('agg-claim-a'), claiming())
    t.same(await state('agg-opt-a'), [{ last_seen_at: new Date(T0 + 9_000), last_seq: 6, battery_pct: 41, status_at: new Date(T0 + 5_000) }])
    t.same(await stored(db, 'agg-opt-a'), await stored(db, 'agg-claim-a'))
  })

  t.test('a stored key in an optimistic group: claimed again, nothing lost or doubled, next groups claim', async (t) => {
    const db = getDb()
    let now = 1_000
    const mode = new ClaimMode(10_000, () => now)
    await writeBatch(db, checkInsOnly('dev-fb', 1, 3), mode)
    const again = await writeBatch(db, checkInsOnly('dev-fb', 2, 4), mode) // seqs 2, 3 stored; 4, 5 new
    t.same(again.outcomes, ['duplicate', 'duplicate', 'new', 'new'])
    t.equal(mode.optimistic, false, 'claiming for the hold time')
    const [n] = await db.query<{ n: number }>("SELECT count(*)::int8 AS n FROM check_ins WHERE device_id = 'dev-fb'")
    t.equal(n?.n, 5)
    const [st] = await db.query<{ last_seq: number; battery_pct: number }>("SELECT last_seq, battery_pct FROM device_state WHERE device_id = 'dev-fb'")
    t.match(st, { last_seq: 5, battery_pct: 87 })
    now += 10_000
    t.equal(mode.optimistic, true, 'optimistic again after the hold')
    const conflict = await writeBatch(db, { records: [{ ...checkInsOnly('dev-fb', 1, 1).records[0]!, deviceTimeMs: T0 - 1 }] }, mode)
    t.same(conflict.outcomes, ['conflict'])
  })

  t.test('concurrent optimistic groups with overlapping keys: each key once, no deadlock', async (t) => {
    const db = getDb()
    const devs = ['ov-a', 'ov-b', 'ov-c']
    const recs = (off: number): WriteBatch => ({ records: devs.flatMap((d) => checkInsOnly(d, off + 1, 50).records) })
    const results = await Promise.all([0, 25, 10, 40].map((o) => writeBatch(db, recs(o), new ClaimMode())))
    t.equal(results.reduce((n, r) => n + r.inserted, 0), devs.length * 90)
    for (const d of devs) t.equal((await db.query<{ n: number }>('SELECT count(*)::int8 AS n FROM check_ins WHERE device_id = $1', [d]))[0]?.n, 90)
  })
}

t.test('embedded', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gp-claim-'))
  const { db, timescale, tsl } = await openPglite(dir)
  t.teardown(async () => {
    await db.close()
    await rm(dir, { recursive: true, force: true })
  })
  await migrate(db, { timescale, tsl })
  suite(t, () => db)
})

t.test('server', async (t) => {
  const made = await makeTestDatabase()
  if (!made) return t.pass('DATABASE_URL is not set: server driver not tested')
  const { db, timescale, tsl } = await openPg(made.url, silentLog)
  t.teardown(async () => {
    await db.close()
    await made.drop()
  })
  await migrate(db, { timescale, tsl })
  suite(t, () => db)
})
