// End to end through the real broker, as `npm start` wires it (src/main.ts
// start(): store → ingest → broker on TCP port 0): the small-town scenario's
// devices are mqtt.js clients with their own secrets; every uplink is
// acknowledged only after the ingest committed it. Reports and cases must
// equal the scenario's ground truth, on both drivers, and the device rules
// (offline, low battery, SOS/man-down/tamper, sensor threshold) raise and
// resolve their cases from what came through the broker.
//
// Time: the simulation runs on a stepped virtual clock that is also the
// server's clock (start({ now })). Before each step the test waits until every
// device's publishes are acknowledged and its connection is where the scenario
// wants it, so the simulated day takes seconds and receipt times are the
// simulated instants the devices published at.
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { hashSecret } from '../../../broker/index.ts'
import type { Clock, TimerId } from '../../../simulators/clock.ts'
import { defaultSecret } from '../../../simulators/fleet.ts'
import { localToInstant, parseHhmm } from '../../../simulators/local-time.ts'
import { MqttTransport } from '../../../simulators/mqtt-transport.ts'
import { prepareScenario } from '../../../simulators/scenario-runner.ts'
import type { PublishOptions, Transport, TransportHandlers } from '../../../simulators/transport.ts'
import { loadConfig } from '../../../src/config/index.ts'
import { start } from '../../../src/main.ts'
import { parseRulesConfig } from '../../../src/rules/cases/config.ts'
import { createRulesEngine, type Timers } from '../../../src/rules/scheduler.ts'
import type { Store } from '../../../src/store/types.ts'
import { LOCAL_EPHEMERAL } from '../../helpers/app.ts'
import { makeTestDatabase } from '../../helpers/db.ts'
import { drivers } from '../store/open.ts'
import { checkAgainstTruth, checkBeforeBatch, register, smallTownWithLateBatch } from './truth.ts'

const log = pino({ level: 'silent' })
const HOUR = 3_600_000
const SYNC_HOURS = 10_000

/** Discrete-event clock whose next timer can be peeked, so a driver can step it. */
class SteppedClock implements Clock {
  private timers = new Map<TimerId, { at: number; order: number; fn: () => void }>()
  private nextId = 1
  private order = 0
  constructor(private t: number) {}
  now(): number {
    return this.t
  }
  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.nextId++
    this.timers.set(id, { at: this.t + Math.max(0, ms), order: this.order++, fn })
    return id
  }
  clearTimeout(id: TimerId | undefined): void {
    if (id !== undefined) this.timers.delete(id)
  }
  /** The earliest pending instant. */
  next(): number | undefined {
    let at: number | undefined
    for (const x of this.timers.values()) if (at === undefined || x.at < at) at = x.at
    return at
  }
  /** Runs every timer due at `at` (also those they schedule for the same instant), in order. */
  runAt(at: number): void {
    this.t = Math.max(this.t, at)
    for (;;) {
      let best: [TimerId, { at: number; order: number; fn: () => void }] | undefined
      for (const e of this.timers) if (e[1].at <= this.t && (!best || e[1].at < best[1].at || (e[1].at === best[1].at && e[1].order < best[1].order))) best = e
      if (!best) return
      this.timers.delete(best[0])
      best[1].fn()
    }
  }
  set(t: number): void {
    this.t = Math.max(this.t, t)
  }
}

/**
 * The mqtt.js transport, counting publishes not yet acknowledged and remembering
 * where the link should be. After a connect the server sends a time sync when
 * the device's last clock estimate is older than SYNC_HOURS (here: only at a first
 * connect): `expectsSync` says whether one is due, and the clock is
 * held until it has arrived (its ack is then an ordinary tracked publish) or for
 * at most 5 s: the server may publish it before the device's SUBSCRIBE is in
 * place, and then it never comes (a sync that comes late is judged expired by
 * the device after 60 simulated seconds).
 */
class Tracked implements Transport {
  inFlight = 0
  reachable = true
  started = false
  private checking = false
  private awaitingSyncUntil = 0
  private commandsSinceOnline = 0
  constructor(
    readonly inner: MqttTransport,
    private readonly expectsSync: () => Promise<boolean>,
  ) {}
  get online(): boolean {
    return this.inner.online
  }
  get settled(): boolean {
    return this.inFlight === 0 && (!this.started || this.inner.online === this.reachable) && !this.checking && Date.now() >= this.awaitingSyncUntil
  }
  start(h: TransportHandlers): void {
    this.started = true
    this.inner.start({
      onOnline: () => {
        this.commandsSinceOnline = 0
        this.checking = true
        this.expectsSync().then(
          (due) => {
            if (due && this.commandsSinceOnline === 0) this.awaitingSyncUntil = Date.now() + 5000
            this.checking = false
          },
          () => (this.checking = false),
        )
        h.onOnline()
      },
      onOffline: (reason) => h.onOffline(reason),
      onCommand: (p) => {
        this.commandsSinceOnline++
        this.awaitingSyncUntil = 0
        h.onCommand(p)
      },
    })
  }
  setReachable(r: boolean): void {
    this.reachable = r
    this.inner.setReachable(r)
  }
  publish(topic: string, payload: Uint8Array, opts: PublishOptions, done: (err?: Error) => void): void {
    this.inFlight++
    this.inner.publish(topic, payload, opts, (err) => {
      this.inFlight--
      done(err)
    })
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}

for (const driver of drivers()) {
  t.test(`small-town through the real broker and ingest equals ground truth; device rules raise and resolve cases (${driver})`, async (t) => {
    const db = driver === 'server' ? await makeTestDatabase() : undefined
    if (driver === 'server' && !db) return
    const dataDir = await mkdtemp(join(tmpdir(), 'gp-e2e-broker-'))
    t.teardown(async () => {
      await db?.drop()
      await rm(dataDir, { recursive: true, force: true })
    })

    const base = smallTownWithLateBatch()
    const s = smallTownWithLateBatch([
      // patrol-g2's clock falls 2 h behind at 08:00 (its 09:00 round is stamped 07:00) until a time sync
      { device: 'patrol-g2', at: '08:00', kind: 'clock_reset', toMs: localToInstant(base.timeZone, base.start, parseHhmm('06:00')) },
      { device: 'patrol-g1', at: '11:00', kind: 'low_battery', pct: 12 },
      { device: 'patrol-g1', at: '12:00', kind: 'low_battery', pct: 95 },
      { device: 'patrol-g1', at: '12:30', kind: 'man_down' },
      { device: 'patrol-g2', at: '13:30', kind: 'tamper' },
    ])
    const local = (hhmm: string) => localToInstant(s.timeZone, s.start, parseHhmm(hhmm))
    const clock = new SteppedClock(local('00:00') - 60_000)
    const config = loadConfig({
      GRIDPATROL_DATA_DIR: dataDir,
      ...(db ? { DATABASE_URL: db.url } : {}),
      ...LOCAL_EPHEMERAL,
      // a simulated day arrives in seconds: the per-device rate limit would only add waiting
      GRIDPATROL_MQTT_PUBLISH_RATE: '100000',
      GRIDPATROL_MQTT_PUBLISH_BURST: '100000',
      // time syncs only at a first connect (and the test's own): the dispatcher's re-syncs of online devices run
      // on the wall clock's polls, which would land anywhere in the simulated day
      GRIDPATROL_TIME_SYNC_HOURS: String(SYNC_HOURS),
    })
    const running = await start(config, log, { rules: false, now: () => clock.now() })
    t.teardown(() => running.close())
    const store: Store = running.store
    await register(store, s, (id) => hashSecret(defaultSecret(id)))

    const transports: Tracked[] = []
    const url = `mqtt://127.0.0.1:${running.ports.mqtt}`
    const sc = prepareScenario(s, {
      clock,
      transportFor: (deviceId, secret) => {
        const expectsSync = async () => {
          const last = await store.clock.latest(deviceId)
          return !last || clock.now() - last.measuredAt.getTime() > SYNC_HOURS * HOUR
        }
        const tr = new Tracked(new MqttTransport({ url, deviceId, secret, reconnectMs: 20 }), expectsSync)
        transports.push(tr)
        return tr
      },
    })
    t.teardown(() => Promise.all(transports.map((x) => x.close())))

    const settle = async () => {
      const deadline = Date.now() + 30_000
      for (let quiet = 0; quiet < 2; ) {
        await new Promise((r) => setTimeout(r, 1))
        quiet = transports.every((x) => x.settled) ? quiet + 1 : 0
        if (Date.now() > deadline) throw new Error(`devices did not settle at ${new Date(clock.now()).toISOString()}: ${transports.map((x) => `${x.inFlight}/${x.online}/${x.reachable}`).join(' ')}`)
      }
    }
    const advanceTo = async (until: number) => {
      for (let next = clock.next(); next !== undefined && next <= until; next = clock.next()) {
        clock.runAt(next)
        await settle()
      }
      clock.set(until)
    }

    // The device rules' settings as `gridpatrol rules config set device-rules` stores them.
    await store.rulesConfig.set('device-rules', parseRulesConfig('device-rules', { offline: { offlineMinutes: 30 }, thresholds: [{ metric: 'water_level', above: 2, forMinutes: 10 }] }))
    const timers: Timers = { setTimeout: () => undefined, clearTimeout: () => undefined }
    const engine = createRulesEngine({ store, log, now: () => clock.now(), timers })
    const open = async (rule: string) => (await store.cases.list({ rule })).filter((c) => c.clearedAtMs === null)

    // 11:40 — battery at 12 % since 11:00, water level 2.5 m held 11:00–11:30, the 10:00 SOS.
    await advanceTo(local('11:40'))
    await engine.runDeviceRules()
    const [battery] = await open('low_battery')
    t.strictSame([battery?.subject, battery?.priority, battery?.department], ['patrol-g1', 'normal', 'device-maintenance'], 'low battery case')
    // 12 % at 11:00, drained a little by the status that reported it
    t.ok(Number(battery?.detail['percent']) <= 12 && Number(battery?.detail['percent']) > 5, `battery ${battery?.detail['percent']} %`)
    const [level] = await open('sensor_threshold')
    t.strictSame([level?.subject, level?.gridId, level?.department], ['sensor-wl-1', 'G2', 'municipal-facilities'], 'water level held above 2 m')
    t.ok(Number(level?.detail['peak']) > 2 && Number(level?.detail['minutes']) >= 10, 'threshold held at least 10 min')
    t.strictSame((await open('alarm')).map((c) => [c.subject, c.detail['kind'], c.priority, c.department]), [['patrol-g2', 'sos', 'urgent', 'emergency']])

    // 11:45 — a time sync measures patrol-g2's −2 h; the device steps its clock right after acknowledging, and
    // the dispatcher's follow-up sync measures ≈ 0. Its rows keep the offset of the first sync after them (by
    // seq): the 09:00 round stays at 09:00 (timed by the latest offset it would move to 07:00, before every window).
    await advanceTo(local('11:45'))
    await running.commands.send('patrol-g2', { kind: 'time_sync', timeSync: { serverTimeMs: clock.now() } }, { ttlMs: 60_000 })
    for (const deadline = Date.now() + 30_000; ; ) {
      await settle()
      const last = await store.clock.latest('patrol-g2')
      if (last && last.measuredAt.getTime() >= local('11:45') && Math.abs(last.offsetMs) < 2000) break
      if (Date.now() > deadline) throw new Error(`patrol-g2: no ≈ 0 clock estimate after the 11:45 sync (latest ${JSON.stringify(last)})`)
      await new Promise((r) => setTimeout(r, 50))
      // simulated time moves on (a second per real 50 ms): two acks received at one instant would be one measurement
      await advanceTo(clock.now() + 1000)
    }

    // 12:20 — recharged at 12:00: the battery case is resolved by the system.
    await advanceTo(local('12:20'))
    await engine.runDeviceRules()
    t.equal((await open('low_battery')).length, 0, 'battery recovered')
    const recharged = (await store.cases.get(battery!.id))!
    t.equal(recharged.state, 'rejected')
    t.strictSame((await store.cases.events(battery!.id)).map((e) => [e.rule, e.role, e.note]), [['raise', 'system', battery!.title], ['reject', 'system', 'battery recovered']])

    // 15:30 — patrol-g1 off the network since 14:50: offline case; back at 15:50: resolved.
    await advanceTo(local('15:30'))
    await engine.runDeviceRules()
    t.strictSame((await open('device_offline')).map((c) => [c.subject, c.department]), [['patrol-g1', 'device-maintenance']], 'patrol-g1 offline')
    await advanceTo(local('16:20'))
    await engine.runDeviceRules()
    t.strictSame((await open('device_offline')).map((c) => c.subject), [], 'patrol-g1 seen again; patrol-g2 silent only since 16:00')

    // 21:00 — the 16:00–20:00 window has closed; patrol-g2's round is still on the device.
    await advanceTo(local('21:00'))
    await engine.start()
    await engine.idle()
    await checkBeforeBatch(t, store, s)
    t.strictSame((await open('device_offline')).map((c) => c.subject), ['patrol-g2'], 'patrol-g2 offline since 16:00')
    t.strictSame(
      (await open('alarm')).map((c) => [c.subject, c.detail['kind'], c.priority]).sort(),
      [['patrol-g1', 'man_down', 'urgent'], ['patrol-g2', 'sos', 'urgent'], ['patrol-g2', 'tamper', 'urgent']],
      'SOS, man-down and tamper: urgent cases',
    )

    // Everything else arrives (the batch at ~21:30); the scheduler re-evaluates.
    await advanceTo(sc.endMs + s.drainMinutes * 60_000 + HOUR)
    const tick = await engine.tick()
    t.ok(tick.evaluated.some((o) => o.gridId === 'G2' && o.status === 'revised'), 'late upload → new revision')
    t.ok(tick.deviceRules, 'device rules ran')
    await engine.stop()
    t.strictSame((await open('device_offline')).map((c) => c.subject), [], 'patrol-g2 back: offline case resolved')
    t.strictSame((await store.cases.list({ rule: 'device_offline' })).map((c) => [c.subject, c.state]), [['patrol-g1', 'rejected'], ['patrol-g2', 'rejected']])

    const truth = await sc.run()
    t.ok(truth.visits.some((v) => v.delivery === 'batch' && v.deviceId === 'patrol-g2'), 'the scenario has a late batch')
    t.ok(truth.events.some((e) => e.deviceId === 'patrol-g2' && e.kind === 'clock_set' && e.detail?.['cause'] === 'time_sync'), 'patrol-g2 stepped its clock after a sync')
    t.ok(truth.visits.every((v) => v.delivery !== 'undelivered'), 'every visit was acknowledged by the broker')
    t.ok(truth.totals.duplicateSends > 0, 'duplicates were sent')
    await checkAgainstTruth(t, store, s, truth)

    // Same data → same report: evaluating again changes nothing.
    const again = await engine.evaluateDays(truth.coverage.map((c) => ({ gridId: c.gridId, localDate: c.localDate })))
    t.ok(again.every((o) => o.status === 'unchanged' && o.casesOpened + o.casesUpdated + o.casesResolved === 0), 'idempotent')
  })
}
