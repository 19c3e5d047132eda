// The batch writes of a first evaluation (store/queries/cases.ts raiseMany /
// upsertMany, coverage.ts reports.saveMany), on both drivers: every input lands
// on its own row whatever its place in the batch; a report's result is stored
// as written (key order kept: the column is json); a case's evidence and detail
// come back as given; only an inserted case gets its 'raise' entry.
import t from 'tap'
import type { NewCase, NewCaseEvent, NewCoverageReport } from '../../../src/store/rules-types.ts'
import { drivers, openRulesStore } from './open.ts'

const D = '2024-06-01'
const AT = Date.parse(`${D}T13:00:00+08:00`)

// Keys in an order jsonb would not keep (it sorts by length, then bytes), nested too.
const result = (g: string, n: number) => ({ zeta: g, gridId: g, localDate: D, windows: [{ key: `${D}/0${n}`, met: n }], a: { z: n, b: [n, `${g}"\\`], aa: null } })
const report = (g: string, revision: number, n: number): NewCoverageReport => ({
  gridId: g, localDate: D, revision, planVersion: 1, watermarkMs: AT - 60_000, evaluatedAtMs: AT, coveragePct: n, met: n, missed: 10 - n, pending: 0,
  result: result(g, n), changes: [{ kind: 'x', n }], digest: `d-${g}-${n}`,
})

const kase = (k: string, evidence: string[], detail: NewCase['detail'], title = `case ${k}`): { c: NewCase; event: NewCaseEvent } => ({
  c: {
    dedupKey: k, rule: 'patrol_miss', gridId: 'G1', subject: `cp-${k}`, windowKey: `${D}/${k}`, reportDate: D, category: 'patrol_miss', department: 'grid-office',
    priority: 'normal', title, detectedAtMs: AT - 3_600_000, openedAtMs: AT, stageDueAtMs: AT + 3_600_000, closureDueAtMs: AT + 86_400_000, evidence, detail,
  },
  event: { rule: 'raise', actor: 'rules', role: 'system', note: title, atMs: AT, detail: { evidence } },
})

for (const driver of drivers()) {
  t.test(`reports.saveMany: each result on its own row, stored as written (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    const first = [report('G1', 1, 1), report('G2', 1, 2), report('G3', 1, 3)]
    t.strictSame(await store.reports.saveMany(first), [true, true, true])
    // A revision stored already (G2's) is refused in its place; the others are stored.
    const next = [report('G3', 2, 7), report('G2', 1, 8), report('G1', 2, 9)]
    t.strictSame(await store.reports.saveMany(next), [true, false, true])
    for (const r of [...first, next[0]!, next[2]!]) {
      const got = await store.reports.get(r.gridId, D, r.revision)
      t.equal(JSON.stringify(got?.result), JSON.stringify(r.result), `${r.gridId} r${r.revision} result, key for key`)
      t.strictSame([got?.met, got?.missed, got?.digest, got?.changes], [r.met, r.missed, r.digest, r.changes])
    }
    t.equal((await store.reports.get('G2', D, 1))?.met, 2, 'the stored revision is the first one')
  })

  t.test(`cases.raiseMany / upsertMany: per input, created or updated; one entry each (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    const a = kase('a', ['d1:1', 'd1:2'], { visits: 0, required: 1, from: 'x', note: null })
    const b = kase('b', [], { minutes: 280, toKind: 'visit', fromKind: 'visit' })
    t.strictSame(await store.cases.raiseMany([b, a]), [{ created: true, updated: false }, { created: true, updated: false }])
    const c = kase('c', ['d1:9'], { z: 1, a: 2 })
    const b2 = kase('b', ['late:1'], b.c.detail)
    // new, changed, unchanged
    t.strictSame(await store.cases.raiseMany([c, b2, a]), [
      { created: true, updated: false },
      { created: false, updated: true },
      { created: false, updated: false },
    ])
    const d2 = kase('d', [], { k: 'v' })
    const out = await store.cases.upsertMany([d2, { ...a, c: { ...a.c, title: 'renamed' } }])
    t.strictSame(out.map((x) => [x.case.dedupKey, x.created, x.updated, x.case.title]), [['d', true, false, 'case d'], ['a', false, true, 'renamed']])
    for (const [k, evidence, detail, rules] of [
      ['a', a.c.evidence, a.c.detail, ['raise', 'update']],
      ['b', ['late:1'], b.c.detail, ['raise', 'update']],
      ['c', c.c.evidence, c.c.detail, ['raise']],
      ['d', [], d2.c.detail, ['raise']],
    ] as const) {
      const row = await store.cases.byKey(k)
      t.strictSame(row?.evidence, evidence, `${k} evidence`)
      t.strictSame(row?.detail, detail, `${k} detail`)
      const ev = await store.cases.events(row!.id)
      t.strictSame(ev.map((e) => e.rule), rules, `${k} audit entries`)
      t.strictSame(ev[0]?.detail, { evidence: k === 'b' ? [] : evidence }, `${k} raise entry detail`)
      t.strictSame([ev[0]?.from, ev[0]?.to, ev[0]?.note], [null, 'reported', `case ${k}`])
    }
  })
}
