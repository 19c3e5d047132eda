// End to end: a simulator scenario (misses, an offline spell with a late batch
// upload, clock offset and drift, duplicate sends, an SOS) through the real
// ingest pipeline into the store, evaluated by the rules engine's scheduler;
// reports and cases must match the scenario's ground truth exactly, on both
// drivers. The broker hop here is the simulators' in-memory network (which acks
// on receipt); broker.test.ts runs the same scenario through the real broker.
import t from 'tap'
import { pino } from 'pino'
import { parseTopic } from '../../../firmware-protocol/index.ts'
import { createIngest } from '../../../ingest/index.ts'
import { runScenario } from '../../../simulators/scenario-runner.ts'
import type { NetMessage } from '../../../simulators/memory-network.ts'
import { createRulesEngine, type Timers } from '../../../src/rules/scheduler.ts'
import { drivers, openRulesStore } from '../store/open.ts'
import { checkAgainstTruth, checkBeforeBatch, register, smallTownWithLateBatch } from './truth.ts'

const log = pino({ level: 'silent' })
const HOUR = 3_600_000

for (const driver of drivers()) {
  t.test(`small-town scenario through ingest and rules equals ground truth (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    const s = smallTownWithLateBatch()
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
    await feed(truth.startMs + 21 * HOUR)
    await engine.start()
    await engine.idle()
    await checkBeforeBatch(t, store, s)

    // Phase 2: everything else arrives (the batch at ~21:30); the scheduler re-evaluates.
    await feed(truth.drainedUntilMs + HOUR)
    const tick = await engine.tick()
    t.ok(tick.evaluated.some((o) => o.gridId === 'G2' && o.status === 'revised'), 'late upload → new revision')
    await engine.stop()

    await checkAgainstTruth(t, store, s, truth)
    // The SOS is an urgent case.
    const [sos] = await store.cases.list({ rule: 'alarm' })
    t.strictSame([sos?.subject, sos?.priority, sos?.department, sos?.detail['kind']], ['patrol-g2', 'urgent', 'emergency', 'sos'])

    // Same data → same report: evaluating again changes nothing.
    const again = await engine.evaluateDays(day)
    t.ok(again.every((o) => o.status === 'unchanged' && o.casesOpened + o.casesUpdated + o.casesResolved === 0), 'idempotent')
  })
}
