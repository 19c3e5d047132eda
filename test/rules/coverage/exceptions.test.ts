// Exceptions-only evaluation (exceptions.ts): for generated grid-days,
// evaluateCompact on the compact stage A equals the full evaluation restricted
// to its exceptions (exceptionsOf) — same verdicts for every non-met cell, same
// summary, gaps, figures and signals — and revisions treat a full result and its
// exceptions as the same report.
import t from 'tap'
import { aggregateCheckins } from '../../../src/rules/coverage/aggregate.ts'
import { compactAggregates } from '../../../src/rules/coverage/compact.ts'
import { coverageCaseProposals } from '../../../src/rules/coverage/cases.ts'
import { evaluateCoverage, evaluateGridDay, type CoverageResult } from '../../../src/rules/coverage/evaluate.ts'
import { evaluateCompact, exceptionsOf } from '../../../src/rules/coverage/exceptions.ts'
import type { CheckinRow } from '../../../src/rules/coverage/inputs.ts'
import { coverageQuery } from '../../../src/rules/coverage/query.ts'
import { parsePlan, type PatrolPlan } from '../../../src/rules/plans/schema.ts'
import { diffResults, materialDigest, nextRevision } from '../../../src/rules/revisions.ts'
import { generate, prng } from '../store/generate.ts'
import { at, plan, scan } from '../fixtures.ts'

const MIN = 60_000
const plain = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T

/** Both paths for one grid-day at `now`, from the same rows. */
function both(p: PatrolPlan, date: string, rows: readonly CheckinRow[], offsets: ReadonlyArray<{ deviceId: string; offsetMs: number }>, now: number) {
  const { query, windows } = coverageQuery(p, date)
  const full = aggregateCheckins(query, rows, offsets)
  return {
    full: evaluateCoverage(p, date, windows, full, now),
    compact: evaluateCompact(p, date, windows, compactAggregates(query, full), now),
  }
}

/** Dense, mostly met patrols like the benchmark's, with misses, rescans, long gaps and late rounds. */
function regular(seed: number, date: string): { plan: PatrolPlan; rows: CheckinRow[] } {
  const r = prng(seed)
  const cps = 2 + Math.floor(r() * 6)
  const windows =
    seed % 3 === 0
      ? { kind: 'shifts' as const, shifts: [{ name: 'day', start: '07:00', end: '15:00' }, { name: 'eve', start: '15:00', end: '23:00', visits: 2 }, { name: 'night', start: '23:00', end: '07:00' }] }
      : { kind: 'every' as const, every: ['1h', '2h', '3h', '4h'][seed % 4] as string, start: seed % 5 === 0 ? '06:00' : '00:00' }
  const p = parsePlan({
    gridId: `R${seed}`,
    checkpoints: Array.from({ length: cps }, (_, j) => ({ id: `c${j}`, tagIds: [`t${j}`], lat: 31 + j * 0.001, lon: 121 })),
    windows,
    visitsPerWindow: 1 + (seed % 2),
    maxGapMinutes: [90, 150, 240, 400][seed % 4] as number,
    graceMinutes: 20,
  })
  const start = Date.parse(`${date}T00:00:00+08:00`) - 6 * 60 * MIN
  const rows: CheckinRow[] = []
  let seq = 0
  for (let m = 0; m < 36 * 60; m += 20 + Math.floor(r() * 50)) {
    for (let j = 0; j < cps; j++) {
      if (r() < 0.25) continue
      const t0 = start + m * MIN + Math.floor(r() * 600) * 1000
      const receivedAt = r() < 0.1 ? t0 + Math.floor(r() * 5 * 60) * MIN : t0 + 2000
      const dev = `d${Math.floor(r() * 3)}`
      rows.push({ id: `${dev}:${++seq}`, deviceId: dev, seq, tagId: r() < 0.02 ? 'stray' : `t${j}`, deviceTime: t0, receivedAt, badge: r() < 0.8 ? `b${dev}` : null, deviceGridId: p.gridId })
      if (r() < 0.05) rows.push({ id: `${dev}:${++seq}`, deviceId: dev, seq, tagId: `t${j}`, deviceTime: t0 + 60_000, receivedAt: receivedAt + 60_000, badge: null, deviceGridId: p.gridId })
    }
  }
  return { plan: p, rows }
}

t.test('evaluateCompact equals the full evaluation restricted to its exceptions', async (t) => {
  const date = '2024-05-10'
  const dayStart = Date.parse(`${date}T00:00:00+08:00`)
  const nows = [-60, 5 * 60, 11 * 60 + 7, 18 * 60, 24 * 60 + 10, 24 * 60 + 60, 3 * 24 * 60].map((m) => dayStart + m * MIN)
  let days = 0
  const seen = { pending: 0, missed: 0, met: 0, gaps: 0, openGaps: 0, unlisted: 0, signals: 0 }
  const check = (name: string, p: PatrolPlan, d: string, rows: readonly CheckinRow[], offsets: ReadonlyArray<{ deviceId: string; offsetMs: number }>) => {
    for (const now of nows) {
      const { full, compact } = both(p, d, rows, offsets, now)
      days++
      t.strictSame(plain(compact), plain(exceptionsOf(full)), `${name} ${d} at ${new Date(now).toISOString()}`)
      for (const c of full.cells) seen[c.status]++
      seen.gaps += full.gaps.length
      seen.openGaps += full.gaps.filter((g) => g.toKind === 'now').length
      seen.signals += full.signals.length
      seen.unlisted += full.summary.required - compact.cells.length
    }
  }
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const g = generate(seed, date, `s${seed}-`)
    for (const p of g.plans) for (const d of ['2024-05-09', date, '2024-05-11']) check(`generated ${seed} ${p.gridId}`, p, d, g.rows, g.offsets)
  }
  for (let seed = 1; seed <= 24; seed++) {
    const g = regular(seed, date)
    check(`regular ${seed}`, g.plan, date, g.rows, [])
  }
  t.ok(days > 300, `${days} grid-days compared`)
  t.ok(Object.values(seen).every((n) => n > 0), `every kind of verdict, gap and signal occurs: ${JSON.stringify(seen)}`)
})

t.test('exceptionsOf: only the cells that are not met, met counted per window; idempotent', async (t) => {
  const D = '2024-06-01'
  const rows = [scan(`${D}T01:00:00+08:00`, 'tag-a', { id: 'a1' }), scan(`${D}T07:00:00+08:00`, 'tag-a', { id: 'a2' }), scan(`${D}T08:00:00+08:00`, 'tag-b', { id: 'b1' })]
  const full = evaluateGridDay({ plan: plan(), localDate: D, checkins: rows, now: at(`${D}T13:00:00+08:00`) })
  const exc = exceptionsOf(full)
  t.equal(exc.cellsScope, 'exceptions')
  t.strictSame(
    exc.cells.map((c) => `${c.windowKey.slice(11)} ${c.checkpointId} ${c.status}`),
    ['00:00-06:00 B missed', '12:00-18:00 A pending', '12:00-18:00 B pending', '18:00-00:00 A pending', '18:00-00:00 B pending'],
  )
  t.strictSame(exc.windows.map((w) => w.met), [1, 2, 0, 0])
  t.equal(exc.windows.reduce((n, w) => n + (w.met ?? 0), 0), full.summary.met)
  t.strictSame([exc.summary, exc.gaps, exc.devices, exc.patrollers, exc.signals], [full.summary, full.gaps, full.devices, full.patrollers, full.signals])
  t.equal(exceptionsOf(exc), exc, 'an exceptions result is returned as it is')
  t.equal(full.cellsScope, undefined, 'the input is not touched')
  t.equal(full.cells.length, 8)
})

t.test('revisions: a full result and its exceptions are the same report', async (t) => {
  const g = regular(7, '2024-05-10')
  const { full, compact } = both(g.plan, '2024-05-10', g.rows, [], Date.parse('2024-05-11T03:00:00+08:00'))
  t.ok(full.summary.met > 0 && compact.cells.length < full.cells.length)
  t.equal(materialDigest(compact), materialDigest(full))
  t.equal(materialDigest(plain(compact)), materialDigest(compact), 'survives the JSON round trip (as stored)')
  t.strictSame(diffResults(full, compact), [])
  t.strictSame(diffResults(compact, full), [])
  t.strictSame(coverageCaseProposals(compact), coverageCaseProposals(full), 'the same cases')
  // A report stored before (full) re-evaluated now (exceptions) on the same data: no new revision.
  const prev = nextRevision(undefined, full, 1).report
  t.same([nextRevision(prev, compact, 2).changed, nextRevision(prev, compact, 2).report.revision], [false, 1])
})

t.test('revisions on exceptions: a met cell’s evidence is not material; a cell turning met is', async (t) => {
  const D = '2024-06-01'
  const L = (hhmm: string) => at(`${D}T${hhmm}:00+08:00`)
  const p = plan()
  const base = [scan(`${D}T02:00:00+08:00`, 'tag-a', { id: 'a-02' }), scan(`${D}T05:00:00+08:00`, 'tag-a', { id: 'a-05' }), scan(`${D}T07:00:00+08:00`, 'tag-b', { id: 'b-07' })]
  const ev = (rows: CheckinRow[], now: number) => {
    const { query, windows } = coverageQuery(p, D)
    return evaluateCompact(p, D, windows, compactAggregates(query, aggregateCheckins(query, rows, [])), now)
  }
  const r1 = ev(base, L('11:00'))
  const first = nextRevision(undefined, r1, L('11:00')).report

  // A late scan of A at 01:00 (received at 11:30): A's 00–06 cell was met by a-02 and now cites the
  // earlier scan, but the cell stays met and A's gaps in the day were not over-long either way.
  const earlier = ev([...base, scan(`${D}T01:00:00+08:00`, 'tag-a', { id: 'a-01', receivedAt: L('11:30') })], L('11:00'))
  const full = evaluateGridDay({ plan: p, localDate: D, checkins: [...base, scan(`${D}T01:00:00+08:00`, 'tag-a', { id: 'a-01', receivedAt: L('11:30') })], now: L('11:00') })
  t.strictSame(full.cells.find((c) => c.checkpointId === 'A' && c.windowKey === `${D}/00:00-06:00`)?.evidence, ['a-01'], 'the full detail cites the late scan')
  const same = nextRevision(first, earlier, L('11:30'))
  t.strictSame(
    same.changes.map((c) => (c.kind === 'figures' ? `${c.kind} ${c.subject}` : c.kind)),
    ['figures device:D1', 'figures patroller:P1'],
    'no cell change: the report cites met evidence as of its watermark; only the scan counts moved',
  )
  // Figures aside (the same row counted elsewhere), the new citation alone is no material change.
  const figuresOf = (r: typeof r1) => ({ ...r, devices: r1.devices, patrollers: r1.patrollers })
  t.same(nextRevision(first, figuresOf(earlier), L('11:30')).changed, false)
  t.equal(materialDigest(figuresOf(earlier)), materialDigest(r1))

  // A late scan of B in 00–06 turns a missed cell met: material.
  const filled = ev([...base, scan(`${D}T03:00:00+08:00`, 'tag-b', { id: 'b-03', receivedAt: L('11:30') })], L('11:00'))
  const next = nextRevision(first, filled, L('11:30'))
  t.equal(next.report.revision, 2)
  t.ok(
    next.changes.some((c) => c.kind === 'cell' && c.checkpointId === 'B' && c.windowKey === `${D}/00:00-06:00` && c.from === 'missed' && c.to === 'met'),
    'the revision names the cell that turned met',
  )
  t.ok(next.changes.some((c) => c.kind === 'coverage'))
  t.notSame(materialDigest(filled), materialDigest(r1))
  t.same(
    coverageCaseProposals(filled).filter((x) => x.rule === 'patrol_miss').map((x) => x.subject),
    [],
    'its miss is no longer proposed: the runner resolves the case',
  )
})

t.test('a compact stage A that does not tile the plan is refused', async (t) => {
  const p = plan()
  const { query, windows } = coverageQuery(p, '2024-06-01')
  const c = compactAggregates(query, aggregateCheckins(query, [], []))
  t.throws(() => evaluateCompact(p, '2024-06-01', windows, { ...c, metCells: 1 }, at('2024-06-02T00:00:00Z')), /do not tile/)
  t.throws(() => evaluateCompact(p, '2024-06-01', windows, { ...c, shortCells: c.shortCells.slice(1) }, at('2024-06-02T00:00:00Z')), /do not tile/)
})

// A type-level reminder: the stored shape is a CoverageResult.
const _shape: (r: CoverageResult) => CoverageResult = exceptionsOf
void _shape
