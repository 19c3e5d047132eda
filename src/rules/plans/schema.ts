import { z } from 'zod'
import { parseDurationMinutes, parseHhmm } from '../tz.ts'
import { hhmm, localDate, timeZone, weekday, WEEKDAYS } from './fields.ts'

/**
 * The patrol plan of one grid: which checkpoints, which daily windows, how many
 * visits per window, the longest allowed gap, grace for late uploads, the time
 * zone and the active days. Every field is .describe()d; defaults are declared
 * here once (ThingsBoard's defaultConfiguration).
 */

const checkpointSchema = z
  .object({
    id: z.string().min(1).describe('Checkpoint id, unique within the plan'),
    name: z.string().optional().describe('Human name shown in reports'),
    tagIds: z
      .array(z.string().min(1))
      .default([])
      .describe('Tag ids (NFC/RFID/iButton/QR) that identify this checkpoint; check-ins carrying one count here'),
    lat: z.number().min(-90).max(90).optional().describe('Latitude (WGS84), used by the impossible-travel check'),
    lon: z.number().min(-180).max(180).optional().describe('Longitude (WGS84), used by the impossible-travel check'),
  })
  .refine((c) => (c.lat === undefined) === (c.lon === undefined), {
    message: 'lat and lon must be given together',
    path: ['lat'],
  })

const everyWindows = z
  .object({
    kind: z.literal('every'),
    every: z
      .string()
      .refine((v) => (parseDurationMinutes(v) ?? 0) > 0, 'must be a duration like "2h", "90m" or "1h30m"')
      .describe('Length of each window; windows tile [start, end) back to back'),
    start: hhmm.default('00:00').describe('Local time the first window starts'),
    end: hhmm
      .optional()
      .describe('Local time the last window ends; at or before start = next day; omitted = start + 24 h'),
  })
  .superRefine((w, ctx) => {
    const every = parseDurationMinutes(w.every) ?? 0
    if (every <= 0) return
    const span = spanMinutes(w.start, w.end)
    if (span % every !== 0) {
      ctx.addIssue({ code: 'custom', path: ['every'], message: `must divide the ${span}-minute span from start to end` })
    }
  })
  .describe('Interval windows: every N from a start time')

const shiftSchema = z
  .object({
    name: z.string().min(1).regex(/^[^/|]+$/, 'must not contain "/" or "|"').describe('Shift name, unique within the plan'),
    start: hhmm.describe('Local start time'),
    end: hhmm.describe('Local end time; at or before start = crosses midnight into the next day'),
    visits: z.number().int().min(1).optional().describe('Visits required in this shift (overrides visitsPerWindow)'),
  })
  .refine((s) => s.start !== s.end, { message: 'a shift must not start and end at the same time', path: ['end'] })

const shiftWindows = z
  .object({
    kind: z.literal('shifts'),
    shifts: z.array(shiftSchema).min(1).describe('Named shifts'),
  })
  .superRefine((w, ctx) => {
    const seen = new Set<string>()
    w.shifts.forEach((s, i) => {
      if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: ['shifts', i, 'name'], message: `duplicate shift name "${s.name}"` })
      seen.add(s.name)
    })
  })
  .describe('Named shifts, each its own window')

export const planSchema = z
  .object({
    gridId: z.string().min(1).describe('Grid this plan covers'),
    checkpoints: z.array(checkpointSchema).min(1).describe('Checkpoints to patrol'),
    windows: z.discriminatedUnion('kind', [everyWindows, shiftWindows]).describe('Daily windows, in local wall-clock time'),
    visitsPerWindow: z.number().int().min(1).default(1).describe('Visits each checkpoint needs in each window'),
    maxGapMinutes: z
      .number()
      .int()
      .min(1)
      .default(240)
      .describe('Longest allowed time between consecutive visits of one checkpoint, inside patrolled time'),
    graceMinutes: z
      .number()
      .int()
      .min(0)
      .default(30)
      .describe('Wait after a window closes for late store-and-forward uploads before it is judged missed'),
    timeZone,
    activeDays: z
      .object({
        weekdays: z.array(weekday).default([...WEEKDAYS]).describe('Weekdays the plan applies'),
        dates: z.array(localDate).default([]).describe('Extra local dates the plan applies (beyond weekdays)'),
        exceptDates: z.array(localDate).default([]).describe('Local dates the plan does not apply (wins over both)'),
      })
      .default({ weekdays: [...WEEKDAYS], dates: [], exceptDates: [] })
      .describe('Days on which windows exist; a window belongs to the day it starts'),
    effectiveFrom: localDate.optional().describe('First local date this plan version applies; omitted = always'),
    effectiveAt: z
      .iso.datetime({ offset: true })
      .optional()
      .describe(
        'When the plan was put in force (ISO 8601): windows that ended at or before it are not judged. `plan set` sets it on a grid\'s first plan, so the windows of the day that passed before the grid had a plan raise no cases',
      ),
    antiFraud: z
      .object({
        rescanMinutes: z
          .number()
          .min(0)
          .default(5)
          .describe('Scans of one checkpoint closer than this count as one visit; by the same device they are flagged'),
        maxSpeedKmh: z.number().positive().default(60).describe('Faster travel between two checkpoints is flagged'),
        travelSlackMeters: z
          .number()
          .min(0)
          .default(30)
          .describe('Distance allowance added to the speed check (tag placement, clock resolution)'),
        creditForeignDevices: z
          .boolean()
          .default(true)
          .describe('Whether scans by a device assigned to another grid still count (they are always flagged)'),
      })
      .default({ rescanMinutes: 5, maxSpeedKmh: 60, travelSlackMeters: 30, creditForeignDevices: true })
      .describe('Anti-fraud signal thresholds'),
    clock: z
      .object({
        maxAheadMinutes: z
          .number()
          .min(0)
          .default(5)
          .describe('A corrected device time later than receipt by more than this is implausible'),
        maxUploadDelayHours: z
          .number()
          .positive()
          .default(168)
          .describe('A corrected device time earlier than receipt by more than this is implausible'),
      })
      .default({ maxAheadMinutes: 5, maxUploadDelayHours: 168 })
      .describe('Plausibility of device clocks'),
  })
  .superRefine((p, ctx) => {
    const ids = new Set<string>()
    const tags = new Map<string, string>()
    p.checkpoints.forEach((c, i) => {
      if (ids.has(c.id)) ctx.addIssue({ code: 'custom', path: ['checkpoints', i, 'id'], message: `duplicate checkpoint id "${c.id}"` })
      ids.add(c.id)
      c.tagIds.forEach((tag, j) => {
        const owner = tags.get(tag)
        if (owner !== undefined && owner !== c.id) {
          ctx.addIssue({ code: 'custom', path: ['checkpoints', i, 'tagIds', j], message: `tag "${tag}" already belongs to checkpoint "${owner}"` })
        }
        tags.set(tag, c.id)
      })
    })
  })

export type PatrolPlan = z.output<typeof planSchema>
export type PatrolPlanInput = z.input<typeof planSchema>
export type PlanCheckpoint = PatrolPlan['checkpoints'][number]

/** Minutes from start to end, where end at or before start means the next day. */
export function spanMinutes(start: string, end: string | undefined): number {
  if (end === undefined) return 1440
  const s = parseHhmm(start)
  const e = parseHhmm(end)
  return e > s ? e - s : e + 1440 - s
}

/** Validates a plan; throws a ZodError whose issues name the field path. */
export function parsePlan(input: unknown): PatrolPlan {
  return planSchema.parse(input)
}

/** The plan version in force on `date`: latest effectiveFrom ≤ date (unset counts as earliest). */
export function planInForce<P extends { effectiveFrom?: string | undefined }>(plans: readonly P[], date: string): P | undefined {
  let best: P | undefined
  for (const p of plans) {
    const from = p.effectiveFrom ?? ''
    if (from > date) continue
    if (!best || from >= (best.effectiveFrom ?? '')) best = p
  }
  return best
}
