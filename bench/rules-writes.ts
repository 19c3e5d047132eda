// npx tsx bench/rules-writes.ts [-- --grids 1000 --copies 1 --driver server,embedded --reps 3 --db-prefix gp_wbench]
// The writes of a first evaluation alone: the cases raised (store.cases.raiseMany: cases and
// their 'raise' audit entries) and the reports stored (store.reports.saveMany), timed on a
// fresh database each repetition, then an idempotent second raise of the first call's cases
// (nothing new, nothing changed). The inputs are those of a real first evaluation of
// bench/rules.ts's day (`--grids` grids, captured once from the runner on the first driver);
// `--copies K` repeats them K times under other grid ids, in calls of 2,500 grids (the
// runner's pass: 10 copies of 1,000 grids ≈ a first evaluation of 10,000 grids).
// Prints wall and CPU time (Node, plus the database's backends on the server).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pino } from 'pino'
import { createRunner } from '../src/rules/runner.ts'
import { parsePlan } from '../src/rules/plans/schema.ts'
import { openStore } from '../src/store/index.ts'
import type { NewCase, NewCaseEvent, NewCoverageReport } from '../src/store/rules-types.ts'
import type { Store } from '../src/store/types.ts'
import { makeTestDatabase } from '../test/helpers/db.ts'
import { cpuSince, cpuSnapshot } from './proc-cpu.ts'
import { CPS, DATE, dayStart, writeDayCheckins } from './rules-data.ts'

type Driver = 'embedded' | 'server'
type Raise = { c: NewCase; event: NewCaseEvent }
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? (process.argv[i + 1] ?? def) : def
}
const grids = Number(arg('grids', '1000'))
const copies = Number(arg('copies', '1'))
const reps = Number(arg('reps', '3'))
const drivers = arg('driver', process.env['DATABASE_URL'] ? 'server,embedded' : 'embedded').split(',') as Driver[]
const dbPrefix = arg('db-prefix', 'gp_wbench')
const log = pino({ level: 'silent' })
const secs = (ms: number) => (ms / 1000).toFixed(2)

async function open(driver: Driver): Promise<{ store: Store; url: string | undefined; done: () => Promise<void> } | undefined> {
  if (driver === 'server') {
    const db = await makeTestDatabase(dbPrefix)
    if (!db) return undefined
    const store = await openStore({ dataDir: '/nonexistent', databaseUrl: db.url }, log)
    await store.migrate()
    return { store, url: db.url, done: async () => { await store.close(); await db.drop() } }
  }
  const dir = await mkdtemp(join(tmpdir(), 'gp-wbench-'))
  const store = await openStore({ dataDir: dir, databaseUrl: undefined }, log)
  await store.migrate()
  return { store, url: undefined, done: async () => { await store.close(); await rm(dir, { recursive: true, force: true }) } }
}

/** The raiseMany and saveMany inputs of a first evaluation of `grids` grids. */
async function capture(driver: Driver): Promise<{ raises: Raise[][]; saves: NewCoverageReport[][] } | undefined> {
  const o = await open(driver)
  if (!o) return undefined
  const { store } = o
  for (let g = 0; g < grids; g++) {
    const gridId = `g${g}`
    await store.grids.create({ id: gridId, level: 'district', name: gridId })
    const checkpoints = Array.from({ length: CPS }, (_, j) => ({ id: `${gridId}-c${j}`, tagIds: [`${gridId}-t${j}`], lat: 31 + g * 0.001, lon: 121 + j * 0.0005 }))
    await store.plans.put({ gridId, effectiveFrom: null, plan: parsePlan({ gridId, checkpoints, windows: { kind: 'every', every: '2h' }, maxGapMinutes: 240 }) })
  }
  await writeDayCheckins(store, grids)
  const raises: Raise[][] = []
  const saves: NewCoverageReport[][] = []
  const { raiseMany } = store.cases
  const { saveMany } = store.reports
  const spy: Store = {
    ...store,
    cases: { ...store.cases, raiseMany: async (items) => (raises.push([...items]), raiseMany(items)) },
    reports: { ...store.reports, saveMany: async (rs) => (saves.push([...rs]), saveMany(rs)) },
  }
  const runner = createRunner({ store: spy, log, now: () => dayStart + 86_400_000 + 3_600_000 })
  await runner.evaluateDays([...(await runner.plans()).keys()].map((gridId) => ({ gridId, localDate: DATE })))
  await o.done()
  return { raises, saves }
}

// Another grid's ids: g<n> → g<n + grids × k>.
const renamed = (s: string | null, k: number) => (s === null || k === 0 ? s : s.replace(/\bg(\d+)/g, (_, n: string) => `g${Number(n) + grids * k}`))

let captured: Awaited<ReturnType<typeof capture>>
for (const driver of drivers) {
  captured ??= await capture(driver)
  if (!captured) {
    console.log(`${driver}: skipped (DATABASE_URL unset)`)
    continue
  }
  const raises0 = captured.raises.flat()
  const saves0 = captured.saves.flat()
  // Calls of 2,500 grids, as the runner's passes (by grid number).
  const pass = (gridId: string) => Math.floor(Number(/^g(\d+)/.exec(gridId)?.[1] ?? 0) / 2500)
  const raiseCalls: Raise[][] = []
  const saveCalls: NewCoverageReport[][] = []
  for (let k = 0; k < copies; k++) {
    for (const x of raises0) {
      const c = { ...x.c, dedupKey: renamed(x.c.dedupKey, k)!, gridId: renamed(x.c.gridId, k)!, subject: renamed(x.c.subject, k) }
      ;(raiseCalls[pass(c.gridId)] ??= []).push({ c, event: x.event })
    }
    for (const x of saves0) {
      const row = { ...x, gridId: renamed(x.gridId, k)! }
      ;(saveCalls[pass(row.gridId)] ??= []).push(row)
    }
  }
  for (let rep = 0; rep < reps; rep++) {
    const o = await open(driver)
    if (!o) break
    const { store, url } = o
    await store.ping()
    const c0 = await cpuSnapshot(url)
    const t0 = performance.now()
    let created = 0
    for (const call of raiseCalls.filter(Boolean)) created += (await store.cases.raiseMany(call)).filter((x) => x.created).length
    const t1 = performance.now()
    const c1 = await cpuSnapshot(url)
    let saved = 0
    for (const call of saveCalls.filter(Boolean)) saved += (await store.reports.saveMany(call)).filter(Boolean).length
    const t2 = performance.now()
    const c2 = await cpuSnapshot(url)
    const again = (await store.cases.raiseMany(raiseCalls[0]!)).filter((x) => x.created || x.updated).length
    const t3 = performance.now()
    const c3 = await cpuSnapshot(url)
    console.log(
      `${driver.padEnd(8)} ${created} cases raised ${secs(t1 - t0)} s ${cpuSince(c0, c1, url)} | ${saved} reports ${secs(t2 - t1)} s ${cpuSince(c1, c2, url)} | ` +
        `re-raise of ${raiseCalls[0]!.length} (${again} changed) ${secs(t3 - t2)} s ${cpuSince(c2, c3, url)}`,
    )
    await o.done()
  }
}
