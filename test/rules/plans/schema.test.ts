import t from 'tap'
import { ZodError } from 'zod'
import { planInForce, planSchema } from '../../../src/rules/plans/schema.ts'

const base = {
  gridId: 'G1',
  checkpoints: [{ id: 'A', tagIds: ['t1'] }],
  windows: { kind: 'every', every: '2h' },
}

t.test('defaults are filled in', async (t) => {
  const p = planSchema.parse(base)
  t.equal(p.timeZone, 'Asia/Shanghai')
  t.equal(p.visitsPerWindow, 1)
  t.equal(p.maxGapMinutes, 240)
  t.equal(p.graceMinutes, 30)
  t.same(p.activeDays.weekdays, ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])
  t.same(p.antiFraud, { rescanMinutes: 5, maxSpeedKmh: 60, travelSlackMeters: 30, creditForeignDevices: true })
  t.same(p.windows, { kind: 'every', every: '2h', start: '00:00' })
})

t.test('bad input names the field', async (t) => {
  const cases: Array<[string, unknown, string]> = [
    ['missing grid', { ...base, gridId: undefined }, 'gridId'],
    ['bad time zone', { ...base, timeZone: 'Asia/Atlantis' }, 'timeZone'],
    ['bad every', { ...base, windows: { kind: 'every', every: 'two hours' } }, 'windows.every'],
    ['every not dividing span', { ...base, windows: { kind: 'every', every: '5h' } }, 'windows.every'],
    ['bad start', { ...base, windows: { kind: 'every', every: '2h', start: '25:00' } }, 'windows.start'],
    ['unknown window kind', { ...base, windows: { kind: 'weekly' } }, 'windows.kind'],
    ['empty shifts', { ...base, windows: { kind: 'shifts', shifts: [] } }, 'windows.shifts'],
    ['zero-length shift', { ...base, windows: { kind: 'shifts', shifts: [{ name: 'x', start: '08:00', end: '08:00' }] } }, 'windows.shifts.0.end'],
    [
      'duplicate shift',
      { ...base, windows: { kind: 'shifts', shifts: [{ name: 'x', start: '08:00', end: '09:00' }, { name: 'x', start: '10:00', end: '11:00' }] } },
      'windows.shifts.1.name',
    ],
    ['duplicate checkpoint', { ...base, checkpoints: [{ id: 'A' }, { id: 'A' }] }, 'checkpoints.1.id'],
    ['tag on two checkpoints', { ...base, checkpoints: [{ id: 'A', tagIds: ['t'] }, { id: 'B', tagIds: ['t'] }] }, 'checkpoints.1.tagIds.0'],
    ['lat without lon', { ...base, checkpoints: [{ id: 'A', lat: 31 }] }, 'checkpoints.0.lat'],
    ['visits 0', { ...base, visitsPerWindow: 0 }, 'visitsPerWindow'],
    ['negative grace', { ...base, graceMinutes: -1 }, 'graceMinutes'],
    ['bad weekday', { ...base, activeDays: { weekdays: ['monday'] } }, 'activeDays.weekdays.0'],
    ['impossible date', { ...base, effectiveFrom: '2024-02-30' }, 'effectiveFrom'],
    ['no checkpoints', { ...base, checkpoints: [] }, 'checkpoints'],
  ]
  for (const [name, input, path] of cases) {
    const r = planSchema.safeParse(input)
    t.notOk(r.success, name)
    if (!r.success) {
      t.ok(r.error instanceof ZodError)
      t.ok(
        r.error.issues.some((i) => i.path.join('.') === path),
        `${name}: an issue at ${path} (got ${r.error.issues.map((i) => i.path.join('.')).join(', ')})`,
      )
    }
  }
})

t.test('every field is described', async (t) => {
  for (const [key, schema] of Object.entries(planSchema.shape)) {
    t.ok(schema.description, `${key} has .describe()`)
  }
})

t.test('planInForce picks the latest effective version', async (t) => {
  const plans = [{ v: 1 }, { v: 2, effectiveFrom: '2024-03-01' }, { v: 3, effectiveFrom: '2024-06-01' }]
  t.equal(planInForce(plans, '2024-01-01')?.v, 1)
  t.equal(planInForce(plans, '2024-03-01')?.v, 2)
  t.equal(planInForce(plans, '2024-12-31')?.v, 3)
  t.equal(planInForce(plans.slice(1), '2024-01-01'), undefined)
})
