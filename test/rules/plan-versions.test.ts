// Plan versions are immutable: the store lists them without their documents and
// gives the documents of the versions asked for; a long-lived runner (the
// scheduler's) reads a new version's document once and evaluates with it.
import t from 'tap'
import { pino } from 'pino'
import { createRunner } from '../../src/rules/runner.ts'
import { drivers, openRulesStore } from './store/open.ts'

const log = pino({ level: 'silent' })
const DATE = '2024-06-03'
const plan = (grid: string, checkpoints: string[]) => ({
  gridId: grid,
  checkpoints: checkpoints.map((c) => ({ id: `${grid}-${c}`, tagIds: [`${grid}-t${c}`] })),
  windows: { kind: 'shifts', shifts: [{ name: 'am', start: '08:00', end: '12:00' }] },
  maxGapMinutes: 600,
  graceMinutes: 30,
})

for (const driver of drivers()) {
  t.test(`plan versions (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    await store.grids.create({ id: 'PV1', level: 'district', name: 'PV1' })
    await store.grids.create({ id: 'PV2', level: 'district', name: 'PV2' })
    await store.plans.put({ gridId: 'PV1', effectiveFrom: null, plan: plan('PV1', ['A', 'B']) })
    await store.plans.put({ gridId: 'PV2', effectiveFrom: '2024-06-01', plan: plan('PV2', ['A']) })

    t.strictSame(await store.plans.versions(), [
      { gridId: 'PV1', version: 1, effectiveFrom: null },
      { gridId: 'PV2', version: 1, effectiveFrom: '2024-06-01' },
    ])
    const got = await store.plans.getVersions([{ gridId: 'PV2', version: 1 }, { gridId: 'PV1', version: 9 }])
    t.equal(got.length, 1, 'only versions that exist')
    t.strictSame(got[0]?.plan, plan('PV2', ['A']))
    t.strictSame(await store.plans.getVersions([]), [])

    const runner = createRunner({ store, log, now: () => Date.parse(`${DATE}T18:00:00+08:00`) })
    t.equal((await runner.evaluateDay('PV1', DATE)).result?.summary.required, 2, 'version 1: two checkpoints')
    await store.plans.put({ gridId: 'PV1', effectiveFrom: null, plan: plan('PV1', ['A', 'B', 'C']) })
    t.equal((await runner.evaluateDay('PV1', DATE)).result?.summary.required, 3, 'the same runner picks up version 2')
  })
}
