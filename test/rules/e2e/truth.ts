// Shared by the scenario e2e tests (not a test file): the small-town scenario
// with a late batch upload, its registration in the store, and the checks that
// the stored reports and patrol cases equal the scenario's ground truth.
import { readFileSync } from 'node:fs'
import type { Test } from 'tap'
import { fileURLToPath } from 'node:url'
import { parseScenario, toRulesPlan, type Scenario } from '../../../simulators/scenario.ts'
import type { GroundTruth } from '../../../simulators/scenario-runner.ts'
import type { CoverageResult } from '../../../src/rules/coverage/evaluate.ts'
import type { Store } from '../../../src/store/types.ts'

type T = Test

export const LATE_WINDOW = '16:00-20:00'

/**
 * small-town (one checkpoint a GPS geofence, credited by the ingest's geofence
 * match) with one more fault: patrol-g2 loses the network 16:00–21:30, so its
 * 16:30 round reaches the server as a batch an hour after the 16:00–20:00
 * window closed (20:30 with grace). `more` adds faults.
 */
export function smallTownWithLateBatch(more: Array<Record<string, unknown>> = []): Scenario {
  const raw = JSON.parse(readFileSync(fileURLToPath(new URL('../../../simulators/scenarios/small-town.json', import.meta.url)), 'utf8'))
  raw.faults.push({ device: 'patrol-g2', at: '16:00', kind: 'offline', durationMinutes: 330 }, ...more)
  // G1's 15:00 round to the 20:00 end of the day is exactly its 300 min longest gap:
  // device time corrected by a drifting clock's offset estimate lands a tenth of a
  // second either side of it. One more minute keeps the verdict off the knife edge.
  for (const p of raw.plans) if (p.gridId === 'G1') p.maxGapMinutes = 301
  return parseScenario(raw)
}

const FAKE_HASH = 'scrypt$16384$8$1$c2FsdA==$aGFzaA=='

/** Grids, checkpoints, devices (secret hash per device, or a placeholder) and plans in force from the first day. */
export async function register(store: Store, s: Scenario, secretHash: (deviceId: string) => Promise<string> = async () => FAKE_HASH): Promise<void> {
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
  for (const d of s.devices) await store.devices.create({ id: d.id, kind: d.type, gridId: d.gridId ?? null, secretHash: await secretHash(d.id) })
  // in force from the scenario's first day: the days before had no patrols planned
  for (const p of s.plans) await store.plans.put({ gridId: p.gridId, effectiveFrom: s.start, plan: { ...toRulesPlan(s, p), effectiveFrom: s.start } })
}

const latest = async (store: Store, gridId: string, localDate: string) => (await store.reports.latest(gridId, localDate))?.result as CoverageResult

/** At 21:00 on the first day (before the batch): the late window looks missed in G2. */
export async function checkBeforeBatch(t: T, store: Store, s: Scenario): Promise<void> {
  const early = await latest(store, 'G2', s.start)
  const late = `${s.start}/${LATE_WINDOW}`
  t.strictSame(
    early.cells.filter((c) => c.status === 'missed').map((c) => [c.checkpointId, c.windowKey]),
    [['G2-B', `${s.start}/12:00-16:00`], ['G2-A', late], ['G2-B', late]].sort((a, b) => (a[1]! + a[0]! < b[1]! + b[0]! ? -1 : 1)),
    'at 21:00 the late window looks missed',
  )
  t.equal((await store.cases.list({ rule: 'patrol_miss' })).length, 3)
}

/** After everything arrived: reports, misses, gaps and patrol cases equal the ground truth; one row per visit. */
export async function checkAgainstTruth(t: T, store: Store, s: Scenario, truth: GroundTruth): Promise<void> {
  const days = truth.coverage.map((c) => ({ gridId: c.gridId, localDate: c.localDate }))
  for (const c of truth.coverage) {
    const r = await latest(store, c.gridId, c.localDate)
    t.equal(r.summary.coveragePct, c.deliveredCoveragePct, `${c.gridId} coverage % equals the truth`)
    t.equal(r.summary.met, c.deliveredMetPairs)
    t.equal(r.summary.pending, 0)
  }
  const misses = (await Promise.all(days.map(async (d) => (await latest(store, d.gridId, d.localDate)).cells.filter((c) => c.status === 'missed').map((c) => [d.gridId, c.checkpointId, c.windowKey])))).flat().sort()
  t.strictSame(misses, truth.misses.filter((m) => m.deliveredVisits < m.required).map((m) => [m.gridId, m.checkpointId, m.windowKey]).sort(), 'missed cells = true misses')

  const gaps = (await Promise.all(days.map(async (d) => (await latest(store, d.gridId, d.localDate)).gaps.map((g) => ({ ...g, gridId: d.gridId }))))).flat()
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
  const late = `${s.start}/${LATE_WINDOW}`
  const openMiss = await store.cases.list({ rule: 'patrol_miss', states: ['reported'] })
  t.strictSame(openMiss.map((c) => [c.gridId, c.subject, c.windowKey]).sort(), misses)
  const voided = await store.cases.list({ rule: 'patrol_miss', states: ['rejected'] })
  t.strictSame(voided.map((c) => [c.subject, c.windowKey]).sort(), [['G2-A', late], ['G2-B', late]])
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

  // Exactly once in the data despite duplicate sends.
  for (const d of truth.devices.filter((x) => x.type === 'patrol')) {
    t.equal(await store.checkIns.count({ deviceId: d.deviceId }), truth.visits.filter((v) => v.deviceId === d.deviceId).length, `${d.deviceId}: one row per visit`)
  }
}
