import type { PatrolPlan } from '../plans/schema.ts'
import type { CoverageQuery } from './inputs.ts'
import { continuesPreviousDay, daySpan, patrolPeriods, windowsForDay, type PlanWindow } from './windows.ts'

const MINUTE = 60_000

/** Everything stage A needs for one grid-day, derived from the plan alone. */
export function coverageQuery(plan: PatrolPlan, date: string): { query: CoverageQuery; windows: PlanWindow[] } {
  const windows = windowsForDay(plan, date)
  const periods = patrolPeriods(windows)
  const span = daySpan(windows)
  const previousVisitBefore = span && continuesPreviousDay(plan, date, span.start) ? span.start : undefined
  return {
    windows,
    query: {
      gridId: plan.gridId,
      checkpoints: plan.checkpoints.map((c) => ({ id: c.id, tagIds: c.tagIds, lat: c.lat, lon: c.lon })),
      windows: windows.map((w) => ({ key: w.key, start: w.start, end: w.end, evidenceLimit: w.visitsRequired })),
      periods,
      previousVisitBefore,
      rescanMs: plan.antiFraud.rescanMinutes * MINUTE,
      maxGapMs: plan.maxGapMinutes * MINUTE,
      maxAheadMs: plan.clock.maxAheadMinutes * MINUTE,
      maxDelayMs: plan.clock.maxUploadDelayHours * 60 * MINUTE,
      maxSpeedKmh: plan.antiFraud.maxSpeedKmh,
      travelSlackMeters: plan.antiFraud.travelSlackMeters,
      creditForeignDevices: plan.antiFraud.creditForeignDevices,
    },
  }
}
