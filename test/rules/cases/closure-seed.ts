// Cases with known workflow histories for the closure-metrics tests (store and
// CLI). Not a test file. Default calendar (Mon–Fri 09:00–12:00, 13:30–18:00,
// Asia/Shanghai) and default categories; 2025-03-10 is a Monday.
import { pino } from 'pino'
import { calendarSchema } from '../../../src/rules/calendar.ts'
import { raiseCases } from '../../../src/rules/cases/apply.ts'
import { categoriesSchema } from '../../../src/rules/cases/categories.ts'
import { proposal } from '../../../src/rules/cases/proposal.ts'
import type { CaseState, Role } from '../../../src/rules/cases/workflow.ts'
import { createRunner } from '../../../src/rules/runner.ts'
import type { Store } from '../../../src/store/types.ts'

/** Local Asia/Shanghai time on 2025-03-DD → instant. */
export const sh = (day: number, hhmm: string) => Date.parse(`2025-03-${String(day).padStart(2, '0')}T${hhmm}:00+08:00`)

type Step = [CaseState, string, Role, number, string?]
const ops = (day: number, times: string[]): Step[] => [
  ['accepted', 'op1', 'operator', sh(day, times[0]!)],
  ['dispatched', 'disp1', 'dispatcher', sh(day, times[1]!)],
  ['handled', 'h1', 'handler', sh(day, times[2]!), 'fixed'],
  ['verified', 'sup1', 'supervisor', sh(day, times[3]!)],
  ['closed', 'op1', 'operator', sh(day, times[4]!)],
]

/**
 * District D9 → streets S91 (grid G91) and S92 (grid G92).
 *  A  G91 patrol_miss  filed Mon 09:10, closed Mon 11:30 (due Thu 09:30: on time)
 *  B  G91 alarm        filed Mon 09:05, closed Mon 19:00 (natural clock, due Mon 14:30: late)
 *  C  G92 offline      filed Tue 09:30, still accepted (overdue by April)
 *  D  G92 patrol_gap   reported only (never filed: not due)
 *  E  G91 patrol_miss  filed Tue 10:00, voided Tue 11:00 (rejected: not counted)
 *  F  G92 low_battery  filed Tue 09:10, closed 11:30, reopened 14:00 (due, not closed)
 */
export async function seedClosureCases(store: Store): Promise<void> {
  await store.grids.create({ id: 'D9', level: 'district', name: 'D9' })
  for (const [street, grid] of [['S91', 'G91'], ['S92', 'G92']] as const) {
    await store.grids.create({ id: street, level: 'street', parentId: 'D9', name: street })
    await store.grids.create({ id: grid, level: 'community', parentId: street, name: grid })
  }
  const ctx = { store, categories: categoriesSchema.parse(undefined), calendar: calendarSchema.parse({}) }
  let now = 0
  const runner = createRunner({ store, log: pino({ level: 'silent' }), now: () => now })
  const cases: Array<[string, string, string, number, Step[]]> = [
    ['A', 'G91', 'patrol_miss', sh(10, '09:00'), ops(10, ['09:10', '09:20', '10:00', '11:00', '11:30'])],
    ['B', 'G91', 'alarm', sh(10, '09:00'), ops(10, ['09:05', '09:10', '12:00', '16:00', '19:00'])],
    ['C', 'G92', 'device_offline', sh(11, '09:00'), [['accepted', 'op1', 'operator', sh(11, '09:30')]]],
    ['D', 'G92', 'patrol_gap', sh(11, '09:00'), []],
    ['E', 'G91', 'patrol_miss', sh(11, '09:00'), [['accepted', 'op1', 'operator', sh(11, '10:00')], ['rejected', 'op1', 'operator', sh(11, '11:00'), 'duplicate of A']]],
    ['F', 'G92', 'low_battery', sh(11, '09:00'), [...ops(11, ['09:10', '09:20', '10:00', '11:00', '11:30']), ['reopened', 'sup1', 'supervisor', sh(11, '14:00'), 'battery died again']]],
  ]
  for (const [name, gridId, category, raisedAt, steps] of cases) {
    const p = proposal({ rule: category, gridId, subject: `subject-${name}`, window: name, category, priority: 'normal', title: `case ${name}`, detectedAt: raisedAt, evidence: [], detail: {} })
    const [r] = await raiseCases(ctx, [{ p, reportDate: null }], raisedAt)
    for (const [to, actor, role, at, note] of steps) {
      now = at
      await runner.transitionCase(r!.case.id, to, { id: actor, roles: [role] }, note ?? null)
    }
  }
}

/** As of April (every deadline passed). */
export const APRIL = sh(31, '12:00') + 10 * 86_400_000
