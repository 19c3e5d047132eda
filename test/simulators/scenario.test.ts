import t from 'tap'
import { fileURLToPath } from 'node:url'
import { loadScenario, parseScenario, ScenarioError, toRulesPlan } from '../../simulators/scenario.ts'
import { runScenario } from '../../simulators/scenario-runner.ts'
import { decodeUplink } from '../../firmware-protocol/index.ts'

const file = (n: string) => fileURLToPath(new URL(`../../simulators/scenarios/${n}.json`, import.meta.url))

t.test('small-town: ground truth of visits, misses, faults and coverage', async (t) => {
  const s = loadScenario(file('small-town'))
  const seen: string[] = []
  const gt = await runScenario(s, { sink: (m) => seen.push(m.topic) })
  t.equal(gt.format, 'gridpatrol-ground-truth/1')
  t.equal(gt.visits.length, 11, '3 + 3 + 2 + 2 + 1 check-ins (G2-B skipped twice)')
  const g1 = gt.coverage.find((c) => c.gridId === 'G1')!
  t.equal(g1.coveragePct, 100)
  const g2 = gt.coverage.find((c) => c.gridId === 'G2')!
  t.same([g2.requiredPairs, g2.metPairs, g2.coveragePct], [6, 5, 83.33])
  t.same(
    gt.misses.map((m) => [m.checkpointId, m.windowKey]),
    [['G2-B', '2025-03-10/12:00-16:00']],
  )
  const batched = gt.visits.filter((v) => v.delivery === 'batch')
  t.same(
    batched.map((v) => v.checkpointId),
    ['G1-A', 'G1-B', 'G1-C'],
    'the 15:00 round happened offline and arrived in a batch',
  )
  for (const v of batched) t.ok(v.deliveredAtMs! > v.trueTimeMs + 40 * 60_000)
  t.ok(gt.visits.every((v) => v.delivery !== 'undelivered'))
  const drift = gt.visits.find((v) => v.deviceId === 'patrol-g1')!
  const expected = 1500 + 30e-6 * (drift.trueTimeMs - gt.startMs)
  t.ok(Math.abs(drift.deviceTimeMs - drift.trueTimeMs - expected) < 5, 'device time = true time + offset + 30 ppm drift')
  t.same(gt.faults.map((f) => f.kind).sort(), ['anomaly', 'duplicate', 'offline', 'skip', 'sos'])
  t.same(gt.alarms.map((a) => [a.kind, a.delivery]), [['sos', 'live']])
  t.equal(gt.totals.duplicateSends, 2)
  t.ok(gt.gaps.some((g) => g.checkpointId === 'G2-B' && g.fromKind === 'visit'), 'the skipped afternoon is an over-long gap')
  t.ok(seen.length > 100, 'the sink saw the traffic')
  t.same(gt.plans[0], toRulesPlan(s, s.plans[0]!))
})

t.test('same seed, same truth; the network saw every delivered visit', async (t) => {
  const s = loadScenario(file('small-town'))
  const a = await runScenario(s)
  const b = await runScenario(s)
  t.same(a, b)
})

t.test('sample city: tens of grids, a day in well under a few seconds', async (t) => {
  const s = loadScenario(file('sample-city'))
  const payloads: { topic: string; payload: Uint8Array }[] = []
  const t0 = performance.now()
  const gt = await runScenario(s, { sink: (m) => payloads.push(m) })
  const ms = performance.now() - t0
  t.ok(ms < 10_000, `ran in ${ms.toFixed(0)} ms`)
  t.ok(gt.grids.length >= 20, `${gt.grids.length} grids`)
  t.ok(new Set(gt.grids.map((g) => g.streetId)).size >= 4)
  for (const p of payloads.filter((x) => x.topic.includes('/up/'))) {
    const r = decodeUplink(p.payload, { topic: p.topic })
    if (!r.ok) t.fail(r.error.message)
  }
  const cov = new Map(gt.coverage.map((c) => [c.gridId, c.coveragePct]))
  t.ok(cov.get('D1-S2-G03')! < 100, 'the powered-off device missed the evening')
  t.ok(cov.get('D1-S1-G02')! < 100, 'the skipped checkpoint')
  t.equal(cov.get('D2-S2-G06'), 100)
  const reset = gt.visits.find((v) => v.deviceId === 'patrol-D1-S1-G03')!
  t.ok(reset.deviceTimeMs < Date.UTC(2001, 0, 1), 'the clock reset shows in device time')
  t.ok(gt.events.some((e) => e.deviceId === 'patrol-D1-S1-G03' && e.kind === 'clock_set'), 'time sync repaired it')
  t.ok(gt.visits.some((v) => v.deviceId === 'patrol-D1-S1-G01' && v.delivery === 'batch'))
})

t.test('the plans map onto the rules plan schema', async (t) => {
  const { parsePlan } = await import('../../src/rules/plans/schema.ts')
  const s = loadScenario(file('small-town'))
  for (const p of s.plans) t.doesNotThrow(() => parsePlan(toRulesPlan(s, p)))
})

t.test('validation errors name the field', async (t) => {
  const s = JSON.parse(JSON.stringify(loadScenario(file('small-town'))))
  s.devices[0].gridId = 'nope'
  s.faults[0].kind = 'meteor'
  s.city.districts[0].streets[0].grids[0].checkpoints[0].lat = 123
  try {
    parseScenario(s)
    t.fail('should throw')
  } catch (err) {
    t.type(err, ScenarioError)
    const paths = (err as ScenarioError).issues.map((i) => i.path)
    t.ok(paths.includes('city.districts[0].streets[0].grids[0].checkpoints[0].lat'), paths.join(', '))
    t.ok(paths.some((p) => p.startsWith('faults[0]')), paths.join(', '))
  }
  const s2 = JSON.parse(JSON.stringify(loadScenario(file('small-town'))))
  s2.devices[0].gridId = 'nope'
  t.throws(() => parseScenario(s2), /devices\[0\]\.gridId: unknown grid "nope"/)
})
