// End to end: a simulator scenario (misses, an offline spell with a late batch
// upload, clock offset and drift, duplicate sends, an SOS) through the real
// ingest pipeline into the store, evaluated by the rules engine's scheduler;
// reports and cases must match the scenario's ground truth exactly, on both
// drivers. The broker hop is the simulators' in-memory network (which acks on
// receipt): the ack-after-commit path is the broker's own tests' subject.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { parseTopic } from '../../../firmware-protocol/index.ts'
import { createIngest } from '../../../ingest/index.ts'
import { parseScenario, toRulesPlan } from '../../../simulators/scenario.ts'
import { runScenario } from '../../../simulators/scenario-runner.ts'
import type { NetMessage } from '../../../simulators/memory-network.ts'
import type { CoverageResult } from '../../../src/rules/coverage/evaluate.ts'
import { createRulesEngine, type Timers } from '../../../src/rules/scheduler.ts'
import type { Store } from '../../../src/store/types.ts'
import { drivers, openRulesStore } from '../store/open.ts'

const log = pino({ level: 'silent' })
const HOUR = 3_600_000

/**
 * small-town (one checkpoint a GPS geofence, credited by the ingest's geofence
 * match) with one more fault: patrol-g2 loses the
 * network 16:00–21:30, so its 16:30 round reaches the server as a batch an hour
 * after the 16:00–20:00 window closed (20:30 with grace).
 */
function scenario() {
  const raw = JSON.parse(readFileSync(fileURLToPath(new URL('../../../simulators/scenarios/small-town.json', import.meta.url)), 'utf8'))
  raw.faults.push({ device: 'patrol-g2', at: '16:00', kind: 'offline', durationMinutes: 330 })
  return parseScenario(raw)
}

async function register(store: Store, s: ReturnType<typeof scenario>) {
  for (const d of s.city.districts) {
    await store.grids.create({ id: d.id, level: 'district', name: d.name ?? d.id })
    for (const st of d.streets) {
      await store.grids.create({ id: st.id, level: 'street', parentId: d.id, name: st.name ?? st.id })
      for (const g of st.grids) {
        await store.grids.create({ id: g.id, level: 'community', parentId: st.id, name: g.name ?? g.id })
        for (const c of g.checkpoints) await store.checkpoints.create({ id: c.id, gridId: g.id, tagId: c.tagId ?? null, name: c.id, lat: c.lat, lon: c.lon })
      }
    }
  }
  for (const d of s.devices) await store.devices.create({ id: d.id, kind: d.type, gridId: d.gridId ?? null, secretHash: 'scrypt$16384$8$1$c2FsdA==$aGFzaA==' })
  // in force from the scenario's first day: the days before had no patrols planned
  for (const p of s.plans) await store.plans.put({ gridId: p.gridId, effectiveFrom: s.start, plan: { ...toRulesPlan(s, p), effectiveFrom: s.start } })
}

for (const driver of drivers()) {
  t.test(`small-town scenario through ingest and rules equals ground truth (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    const s = scenario()
    await register(store, s)
    const messages: NetMessage[] = []
    const truth = await runScenario(s, { sink: (m) => messages.push(m) })
    const day = truth.coverage.map((c) => ({ gridId: c.gridId, localDate: c.localDate }))
    t.ok(truth.visits.some((v) => v.delivery === 'batch' && v.deviceId === 'patrol-g2'), 'the scenario has a late batch')

    let now = truth.startMs
    const ingest = createIngest({ store, log, now: () => now })
    t.teardown(() => ingest.close())
    const feed = async (until: number) => {
      const batch = messages.filter((m) => m.atMs > now && m.atMs <= until)
      now = until
      await Promise.all(
        batch.flatMap((m) => {
          const topic = parseTopic(m.topic)
          if (!topic.ok || topic.direction !== 'up') return []
          return [ingest.commit({ deviceId: m.deviceId, kind: topic.kind, topic: m.topic, payload: m.payload, receivedAt: new Date(m.atMs) })]
        }),
      )
    }
    const timers: Timers = { setTimeout: () => undefined, clearTimeout: () => undefined }
    const engine = createRulesEngine({ store, log, now: () => now, timers, config: { runner: { offline: { offlineMinutes: 24 * 60 } } } })

    // Phase 1, 21:00: the 16:00–20:00 window has closed; patrol-g2's round is still on the device.
    const t1 = truth.startMs + 21 * HOUR
    await feed(t1)
    await engine.start()
    await engine.idle()
    const early = (await store.reports.latest('G2', s.start))?.result as CoverageResult
    const lateWindow = `${s.start}/16:00-20:00`
    t.strictSame(
      early.cells.filter((c) => c.status === 'missed').map((c) => [c.checkpointId, c.windowKey]),
      [['G2-B', `${s.start}/12:00-16:00`], ['G2-A', lateWindow], ['G2-B', lateWindow]].sort((a, b) => (a[1]! + a[0]! < b[1]! + b[0]! ? -1 : 1)),
      'at 21:00 the late window looks missed',
    )
    const raisedEarly = await store.cases.list({ rule: 'patrol_miss' })
    t.equal(raisedEarly.length, 3)

    // Phase 2: everything else arrives (the batch at ~21:30); the scheduler re-evaluates.
    await feed(truth.drainedUntilMs + HOUR)
    const tick = await engine.tick()
    t.ok(tick.evaluated.some((o) => o.gridId === 'G2' && o.status === 'revised'), 'late upload → new revision')
    await engine.stop()

    for (const c of truth.coverage) {
      const rep = await store.reports.latest(c.gridId, c.localDate)
      const r = rep?.result as CoverageResult
      t.equal(r.summary.coveragePct, c.deliveredCoveragePct, `${c.gridId} coverage % equals the truth`)
      t.equal(r.summary.met, c.deliveredMetPairs)
      t.equal(r.summary.pending, 0)
    }
    const misses = (await Promise.all(day.map(async (d) => ((await store.reports.latest(d.gridId, d.localDate))?.result as CoverageResult).cells.filter((c) => c.status === 'missed').map((c) => [d.gridId, c.checkpointId, c.windowKey]))))
      .flat()
      .sort()
    t.strictSame(misses, truth.misses.filter((m) => m.deliveredVisits < m.required).map((m) => [m.gridId, m.checkpointId, m.windowKey]).sort(), 'missed cells = true misses')

    const gaps = (await Promise.all(day.map(async (d) => ((await store.reports.latest(d.gridId, d.localDate))?.result as CoverageResult).gaps.map((g) => ({ ...g, gridId: d.gridId })))))
      .flat()
    t.strictSame(
      gaps.map((g) => [g.gridId, g.checkpointId, g.fromKind, g.toKind, g.final]).sort(),
      truth.gaps.map((g) => [g.gridId, g.checkpointId, g.fromKind, g.toKind, true]).sort(),
      'over-long gaps = true gaps',
    )
    for (const g of truth.gaps) {
      const mine = gaps.find((x) => x.gridId === g.gridId && x.checkpointId === g.checkpointId && x.fromKind === g.fromKind && x.toKind === g.toKind)
      // device clocks (1.5 s offset, 30 ppm drift) move the ends by seconds, never by a minute
      t.ok(mine && Math.abs(mine.minutes - g.minutes) <= 1, `gap ${g.checkpointId} ${g.minutes} min`)
    }

    // Cases: the true misses and gaps open; the late window's two cases rejected by the system.
    const openMiss = await store.cases.list({ rule: 'patrol_miss', states: ['reported'] })
    t.strictSame(openMiss.map((c) => [c.gridId, c.subject, c.windowKey]).sort(), misses)
    const voided = await store.cases.list({ rule: 'patrol_miss', states: ['rejected'] })
    t.strictSame(voided.map((c) => [c.subject, c.windowKey]).sort(), [['G2-A', lateWindow], ['G2-B', lateWindow]])
    for (const c of voided) {
      const trail = await store.cases.events(c.id)
      t.strictSame(trail.map((e) => [e.from, e.to, e.rule, e.role]), [[null, 'reported', 'raise', 'system'], ['reported', 'rejected', 'reject', 'system']])
    }
    // At 21:00 G2-A looked unvisited since its 13:00 round and G2-B since 09:00; the batch
    // closed G2-A's gap (case rejected by the system) and shortened G2-B's (case updated).
    const gapCases = await store.cases.list({ rule: 'patrol_gap' })
    t.equal(gapCases.filter((c) => c.state !== 'rejected').length, truth.gaps.length, 'one open case per true gap')
    t.strictSame(gapCases.filter((c) => c.state === 'rejected').map((c) => c.subject), ['G2-A'])
    const g2b = gapCases.find((c) => c.subject === 'G2-B')!
    t.strictSame((await store.cases.events(g2b.id)).map((e) => e.rule), ['raise', 'update'], 'the shortened gap is an update in the audit trail')
    const revisions = await store.reports.revisions('G2', s.start)
    t.ok(revisions.length >= 2 && revisions.at(-1)!.changes.some((c) => (c as { kind: string }).kind === 'cell'), 'the last revision says which cells changed')

    // Exactly once in the data despite duplicate sends; the SOS is an urgent case.
    for (const d of truth.devices.filter((x) => x.type === 'patrol')) {
      t.equal(await store.checkIns.count({ deviceId: d.deviceId }), truth.visits.filter((v) => v.deviceId === d.deviceId).length, `${d.deviceId}: one row per visit`)
    }
    const [sos] = await store.cases.list({ rule: 'alarm' })
    t.strictSame([sos?.subject, sos?.priority, sos?.department, sos?.detail['kind']], ['patrol-g2', 'urgent', 'emergency', 'sos'])

    // Same data → same report: evaluating again changes nothing.
    const again = await engine.evaluateDays(day)
    t.ok(again.every((o) => o.status === 'unchanged' && o.casesOpened + o.casesUpdated + o.casesResolved === 0), 'idempotent')
  })
}
