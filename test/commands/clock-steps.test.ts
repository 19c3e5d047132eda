// A device clock that steps forward at any moment (GPS time acquired mid-shift, an
// RTC reset, an operator setting it) no longer mistimes the check-ins it recorded
// before the step (PROTOCOL.md §6, src/commands/clock-steps.ts). End to end as
// `npm start` wires it (src/main.ts start(): store → ingest → broker → commands on
// a virtual clock that is also the server's): simulated patrol devices
// (simulators/patrol.ts) publish through mqtt.js, acknowledge time syncs and step
// their clocks after one measuring more than 2 s. Each check-in's time is read
// back as stage A computes it (store.coverage.aggregates) and compared with the
// true time it was made at. Before the server found steps, the check-ins recorded
// between the last sync and the step took the next sync's offset: 3 minutes early.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { hashSecret } from '../../broker/index.ts'
import type { Clock, TimerId } from '../../simulators/clock.ts'
import { MqttTransport } from '../../simulators/mqtt-transport.ts'
import { PatrolDevice, type Checkpoint } from '../../simulators/patrol.ts'
import { createRng } from '../../simulators/prng.ts'
import { loadConfig } from '../../src/config/index.ts'
import { start } from '../../src/main.ts'
import type { CoverageQuery } from '../../src/store/rules-types.ts'
import type { Store } from '../../src/store/types.ts'
import { LOCAL_EPHEMERAL } from '../helpers/app.ts'
import { makeTestDatabase } from '../helpers/db.ts'
import { drivers } from '../rules/store/open.ts'

const MIN = 60_000
const DAY = 86_400_000
const DAY0 = Date.parse('2024-06-03T00:00:00Z')

/** The server's and the devices' true time; moved by the test only. Device timers (heartbeats) never fire. */
class ManualClock implements Clock {
  constructor(public t: number) {}
  now(): number {
    return this.t
  }
  setTimeout(): TimerId {
    return 0
  }
  clearTimeout(): void {}
}

const checkpoints: Checkpoint[] = Array.from({ length: 10 }, (_, i) => ({ id: `CS-${i + 1}`, tagId: `cs-tag-${i + 1}`, method: 'nfc', lat: 31.2 + i * 1e-3, lon: 121.4 }))

/** Stage A over the day: each check-in at its own checkpoint, so each cell's first evidence is one check-in, timed as the rules time it. */
const dayQuery: CoverageQuery = {
  gridId: 'CS-G',
  checkpoints: checkpoints.map((c) => ({ id: c.id, tagIds: [c.tagId] })),
  windows: [{ key: 'day', start: DAY0, end: DAY0 + DAY, evidenceLimit: 5 }],
  periods: [{ start: DAY0, end: DAY0 + DAY }],
  previousVisitBefore: undefined,
  rescanMs: MIN,
  maxGapMs: DAY,
  maxAheadMs: 5 * MIN,
  maxDelayMs: 168 * 60 * MIN,
  maxSpeedKmh: 10_000,
  travelSlackMeters: 100_000,
  creditForeignDevices: true,
}

async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  for (const deadline = Date.now() + ms; !(await ok()); await sleep(10)) if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`)
}

async function system(t: Test, driver: 'embedded' | 'server') {
  const db = driver === 'server' ? await makeTestDatabase('gp_clocksteps') : undefined
  if (driver === 'server' && !db) return undefined
  const dataDir = await mkdtemp(join(tmpdir(), 'gp-clock-steps-'))
  t.teardown(async () => {
    await db?.drop()
    await rm(dataDir, { recursive: true, force: true })
  })
  const clock = new ManualClock(DAY0 + 8 * 60 * MIN)
  const config = loadConfig({
    GRIDPATROL_DATA_DIR: dataDir,
    ...(db ? { DATABASE_URL: db.url } : {}),
    ...LOCAL_EPHEMERAL,
    GRIDPATROL_MQTT_PUBLISH_RATE: '100000',
    GRIDPATROL_MQTT_PUBLISH_BURST: '100000',
    // no periodic syncs: every sync here is the test's, a connect's, a follow-up's or a step's
    GRIDPATROL_TIME_SYNC_HOURS: '10000',
  })
  // the commands' poll every 250 ms instead of 5 s: the syncs in flight go round in a few real seconds
  const running = await start(config, pino({ level: 'silent' }), { rules: false, now: () => clock.now(), commandPollMs: 250 })
  t.teardown(() => running.close())
  const store: Store = running.store
  const url = `mqtt://127.0.0.1:${running.ports.mqtt}`
  const devices: PatrolDevice[] = []
  t.teardown(async () => {
    for (const d of devices) d.stop()
    // the transports close with their devices' links
  })

  /** A patrol device on the network, its clock `offsetMs` off; `ignoreCommands`: it never acknowledges a sync. */
  async function device(id: string, opts: { offsetMs?: number; ignoreCommands?: boolean } = {}) {
    const secret = `secret-${id}`
    await store.devices.create({ id, kind: 'patrol', gridId: null, secretHash: await hashSecret(secret) })
    const transport = new MqttTransport({ url, deviceId: id, secret, reconnectMs: 20 })
    t.teardown(() => transport.close())
    const dev = new PatrolDevice({ clock, transport, deviceId: id, rng: createRng(7), clockOffsetMs: opts.offsetMs ?? 0, ...(opts.ignoreCommands ? { quirks: { ignoreCommands: true } } : {}) })
    devices.push(dev)
    dev.start()
    await until(`${id} online`, () => dev.online)
    return dev
  }
  /** Everything the device sent is acknowledged (stored) and looked at by the clock-step check. */
  const delivered = async (dev: PatrolDevice) => {
    await until(`${dev.id} delivered`, () => dev.online && dev.backlog === 0)
    await running.commands.observed()
  }
  /**
   * Lets the syncs in flight go round — the ones sent at once and those of the commands' poll (a clock
   * ahead past a sync's life judges it expired: one expiring later, then a follow-up) — with simulated time
   * moving on `stepMs` per real 50 ms: two acks received at one instant would be one measurement.
   */
  const settle = async (devs: PatrolDevice[], realMs = 3_000, stepMs = 1000) => {
    for (const end = Date.now() + realMs; Date.now() < end; ) {
      await sleep(50)
      clock.t += stepMs
    }
    for (const d of devs) await delivered(d)
  }
  const checkIn = async (dev: PatrolDevice, i: number) => {
    dev.checkIn(checkpoints[i] as Checkpoint)
    await delivered(dev)
    return dev.visits[dev.visits.length - 1] as { checkpointId: string; seq: number; trueMs: number }
  }
  const metrics = async () => (await fetch(`http://127.0.0.1:${running.ports.http}/metrics`)).text()
  const count = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? 0)
  const stepSyncs = async () => count(await metrics(), /gridpatrol_time_syncs_total\{reason="step_suspected"\} (\d+)/)
  const stepsDetected = async () => count(await metrics(), /gridpatrol_clock_steps_detected_total (\d+)/)
  /** Each check-in's time as stage A computes it, by check-in id. */
  const timed = async () => new Map((await store.coverage.aggregates(dayQuery)).cells.flatMap((c) => c.evidence.map((v) => [v.checkinId, v.at] as const)))
  return { running, store, clock, device, delivered, settle, checkIn, stepSyncs, stepsDetected, timed }
}

for (const driver of drivers()) {
  t.test(`a clock stepped 3 min forward mid-shift: the check-ins before the step keep their time (${driver})`, async (t) => {
    const s = await system(t, driver)
    if (!s) return
    const { store, clock } = s
    const dev = await s.device('cs-step')
    await until('the connect sync measured', async () => (await store.clock.latest('cs-step')) !== undefined)
    const connect = (await store.clock.latest('cs-step'))!
    t.ok(Math.abs(connect.offsetMs) < 1000, 'the clock is right at first')

    const visits = []
    // 08:10–08:40: four check-ins on the right clock
    for (let i = 0; i < 4; i++) {
      clock.t += 10 * MIN
      visits.push(await s.checkIn(dev, i))
    }
    // 08:45: the clock steps 3 min forward (GPS time acquired with a bad leap setting, an operator…): no sync near
    clock.t += 5 * MIN
    dev.deviceClock.set(dev.deviceClock.now() + 3 * MIN)
    clock.t += 5 * MIN
    const first = await s.checkIn(dev, 4)
    visits.push(first)
    await s.settle([dev])
    visits.push(await s.checkIn(dev, 5))

    // The next sync (an operator's, or the periodic one): before, it measured the +3 min and re-timed everything since the connect sync by it.
    clock.t += 10 * MIN
    await s.running.commands.send('cs-step', { kind: 'time_sync', timeSync: { serverTimeMs: clock.now() } }, { ttlMs: 60_000 })
    await s.settle([dev])
    clock.t += 10 * MIN
    visits.push(await s.checkIn(dev, 6))

    const at = await s.timed()
    for (const v of visits) {
      const got = at.get(`cs-step:${v.seq}`)
      t.ok(got !== undefined && Math.abs(got - v.trueMs) <= 2000, `check-in seq ${v.seq} (${v.checkpointId}) timed at its true time: off by ${got === undefined ? 'missing' : `${(got - v.trueMs) / 1000} s`}`)
    }

    const history = await store.clock.history('cs-step')
    const boundary = history.filter((r) => r.source === 'step')
    t.equal(boundary.length, 1, 'one boundary recorded')
    t.match(boundary[0], { seq: visits[3]?.seq, commandId: null }, 'at the last check-in before the step')
    t.ok(Math.abs(boundary[0]?.offsetMs ?? NaN) < 1000, "on the connect sync's offset")
    const after = history.filter((r) => r.source === 'sync' && r.seq !== null && r.seq > first.seq)
    t.ok(Math.abs((after[0]?.offsetMs ?? 0) - 3 * MIN) < 1000, 'the step sync right after measured the +3 min')
    t.equal(await s.stepSyncs(), 1, 'one step_suspected sync')
    t.equal(await s.stepsDetected(), 1, 'one step detected')
    t.equal((await store.clock.latest('cs-step'))?.stepSuspectedAt, null, 'measured since: no step pending')
  })
}

t.test('no step: a clock behind its estimate (network delay), a device never measured; a clock that keeps jumping is synced at most once per 5 min', async (t) => {
  const s = await system(t, 'embedded')
  if (!s) return
  const { store, clock } = s
  // runs 40 s behind its measurement from just after the connect sync: as if every envelope spent 40 s on the way
  const late = await s.device('cs-late')
  await until('the connect sync measured', async () => (await store.clock.latest('cs-late')) !== undefined)
  // ahead by 10 min and never acknowledging a sync: no measurement to judge it by
  const unmeasured = await s.device('cs-unmeasured', { offsetMs: 10 * MIN, ignoreCommands: true })
  late.deviceClock.set(late.deviceClock.now() - 40_000)
  for (let i = 0; i < 3; i++) {
    clock.t += 10 * MIN
    await s.checkIn(late, i)
    await s.checkIn(unmeasured, i)
  }
  t.equal(await s.stepsDetected(), 0, 'nothing detected')
  t.equal(await s.stepSyncs(), 0, 'no step sync')
  t.same((await store.clock.history('cs-late')).map((r) => r.source), ['sync'], 'only the connect sync')
  t.same(await store.clock.history('cs-unmeasured'), [], 'never measured, nothing recorded')

  // a clock that jumps 2 min forward, is synced (and corrected), and jumps again within 5 min: one step sync, two boundaries
  const jumpy = await s.device('cs-jumpy')
  await until('the connect sync measured', async () => (await store.clock.latest('cs-jumpy')) !== undefined)
  clock.t += MIN
  await s.checkIn(jumpy, 0)
  jumpy.deviceClock.set(jumpy.deviceClock.now() + 2 * MIN)
  clock.t += MIN
  await s.checkIn(jumpy, 1)
  // the step sync measures +2 min (the device finds it expired by its clock), one expiring that much later is applied, a follow-up measures ≈ 0
  await s.settle([jumpy], 4_000, 250)
  t.ok(Math.abs((await store.clock.latest('cs-jumpy'))?.offsetMs ?? Infinity) < 1000, 'corrected and measured again')
  t.equal(await s.stepSyncs(), 1, 'first jump: a step sync')
  clock.t += MIN
  await s.checkIn(jumpy, 2)
  jumpy.deviceClock.set(jumpy.deviceClock.now() + 2 * MIN)
  clock.t += MIN
  await s.checkIn(jumpy, 3)
  t.equal(await s.stepsDetected(), 2, 'second jump detected')
  t.equal(await s.stepSyncs(), 1, 'within 5 min of the first step sync: none sent')
  t.equal((await store.clock.history('cs-jumpy')).filter((r) => r.source === 'step').length, 2, 'each jump keeps the rows before it')
  t.ok((await store.clock.latest('cs-jumpy'))?.stepSuspectedAt, 'a step pending measurement')
  clock.t += 5 * MIN
  await s.checkIn(jumpy, 4)
  await until('the second step sync', async () => (await s.stepSyncs()) === 2)
  t.pass('5 min later, the next envelope still ahead: a step sync')
})
