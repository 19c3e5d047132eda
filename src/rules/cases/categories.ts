import { z } from 'zod'
import { addWorkingHours, type WorkCalendar } from '../calendar.ts'
import { UnknownCategoryError } from '../errors.ts'
import type { Instant } from '../tz.ts'
import type { CaseState } from './workflow.ts'

/**
 * Case categories (component or event class): the responsible department and
 * the deadline of each workflow stage. Stage hours are working hours on the
 * work calendar, or natural hours for categories whose `clock` is 'natural'
 * (an SOS at 22:00 cannot wait for the morning).
 */
export const STAGES = ['accept', 'dispatch', 'handle', 'verify', 'close'] as const
export type Stage = (typeof STAGES)[number]

/** The state a case waits in during each stage. `reopened` waits in the handle stage again. */
export const STAGE_OF_STATE: Readonly<Partial<Record<CaseState, Stage>>> = Object.freeze({
  reported: 'accept',
  accepted: 'dispatch',
  dispatched: 'handle',
  reopened: 'handle',
  handled: 'verify',
  verified: 'close',
})

const hours = (def: number, what: string) => z.number().positive().default(def).describe(`Hours allowed to ${what}`)

export const categorySchema = z.object({
  department: z.string().min(1).describe('Department a case of this category is dispatched to'),
  priority: z.enum(['normal', 'urgent']).default('normal').describe('Default priority'),
  clock: z.enum(['working', 'natural']).default('working').describe('Whether deadlines count working hours or natural hours'),
  deadlines: z
    .object({
      accept: hours(1, 'accept or reject a reported case'),
      dispatch: hours(1, 'dispatch an accepted case'),
      handle: hours(16, 'handle a dispatched case'),
      verify: hours(4, 'verify a handled case'),
      close: hours(1, 'close a verified case'),
    })
    .default({ accept: 1, dispatch: 1, handle: 16, verify: 4, close: 1 })
    .describe('Per-stage deadlines'),
})

export type CaseCategory = z.output<typeof categorySchema>

export const DEFAULT_CATEGORIES: Readonly<Record<string, z.input<typeof categorySchema>>> = Object.freeze({
  patrol_miss: { department: 'grid-office' },
  patrol_gap: { department: 'grid-office' },
  device_offline: { department: 'device-maintenance', deadlines: { accept: 2, dispatch: 2, handle: 24, verify: 8, close: 2 } },
  low_battery: { department: 'device-maintenance', deadlines: { accept: 4, dispatch: 4, handle: 24, verify: 8, close: 4 } },
  alarm: { department: 'emergency', priority: 'urgent', clock: 'natural', deadlines: { accept: 0.25, dispatch: 0.25, handle: 2, verify: 2, close: 1 } },
  sensor_threshold: { department: 'municipal-facilities', deadlines: { accept: 1, dispatch: 2, handle: 8, verify: 4, close: 1 } },
})

export const categoriesSchema = z
  .record(z.string().min(1), categorySchema)
  .prefault(() => ({ ...DEFAULT_CATEGORIES }))
  .describe('Case categories by name')

export type CategoryTable = z.output<typeof categoriesSchema>

export function categoryOf(table: CategoryTable, name: string): CaseCategory {
  const c = table[name]
  if (!c) throw new UnknownCategoryError(name)
  return c
}

/** Deadline of a stage entered at `enteredAt`. */
export function stageDue(cat: CaseCategory, cal: WorkCalendar, stage: Stage, enteredAt: Instant): Instant {
  const h = cat.deadlines[stage]
  return cat.clock === 'natural' ? enteredAt + h * 3_600_000 : addWorkingHours(cal, enteredAt, h)
}

/** Overall closure deadline: all stage allowances chained from the report time. */
export function closureDue(cat: CaseCategory, cal: WorkCalendar, reportedAt: Instant): Instant {
  const total = STAGES.reduce((sum, s) => sum + cat.deadlines[s], 0)
  return cat.clock === 'natural' ? reportedAt + total * 3_600_000 : addWorkingHours(cal, reportedAt, total)
}

export interface StageSpan {
  readonly stage: Stage
  readonly enteredAt: Instant
  /** null while the case still waits in this stage. */
  readonly leftAt: Instant | null
  readonly dueAt: Instant
  /** Left after the deadline, or still waiting past it at `now`. */
  readonly overdue: boolean
}

/**
 * The stages a case went through, each with its deadline and overdue flag, from
 * its audit trail (sorted by time; the first event is the report, `from: null`).
 */
export function stageTimeline(
  events: ReadonlyArray<{ readonly to: CaseState; readonly at: Instant }>,
  cat: CaseCategory,
  cal: WorkCalendar,
  now: Instant,
): StageSpan[] {
  const out: StageSpan[] = []
  events.forEach((e, i) => {
    const stage = STAGE_OF_STATE[e.to]
    if (!stage) return
    const next = events[i + 1]
    const dueAt = stageDue(cat, cal, stage, e.at)
    const leftAt = next ? next.at : null
    out.push({ stage, enteredAt: e.at, leftAt, dueAt, overdue: (leftAt ?? now) > dueAt })
  })
  return out
}
