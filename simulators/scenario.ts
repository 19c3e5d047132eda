// The scenario file: a city, its patrol plans, devices with routes, and a fault
// schedule. Validated with zod; every error names the field path. Plans use the
// field names of the rules' plan schema (src/rules/plans/schema.ts) so
// `toRulesPlan` is a plain mapping; simulators cannot import src/ (vendors run them).
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { isTimeZone, parseDuration } from './local-time.ts'

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a local time HH:MM')
const localDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD')
const timeZone = z.string().refine(isTimeZone, 'is not an IANA time zone').default('Asia/Shanghai')
const id = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1–64 of [A-Za-z0-9_.:-]')
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const

const checkpoint = z.object({
  id,
  name: z.string().optional(),
  tagId: z.string().min(1).max(128).optional().describe('Tag read at this checkpoint; omitted for method gps'),
  method: z.enum(['nfc', 'rfid', 'ibutton', 'qr', 'gps']).default('nfc'),
  lat: z.number().min(-90).max(90),
  lon: z.number().min(-180).max(180),
})
const grid = z.object({ id, name: z.string().optional(), code: z.string().optional().describe('e.g. the 15-digit unit-grid code'), checkpoints: z.array(checkpoint).min(1) })
const street = z.object({ id, name: z.string().optional(), grids: z.array(grid).min(1) })
const district = z.object({ id, name: z.string().optional(), streets: z.array(street).min(1) })

const windows = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('every'),
    every: z.string().refine((v) => (parseDuration(v) ?? 0) > 0, 'must be a duration like "2h" or "90m"'),
    start: hhmm.default('00:00'),
    end: hhmm.optional(),
  }),
  z.object({
    kind: z.literal('shifts'),
    shifts: z.array(z.object({ name: z.string().min(1), start: hhmm, end: hhmm, visits: z.number().int().min(1).optional() })).min(1),
  }),
])

const plan = z.object({
  gridId: id,
  checkpointIds: z.array(id).optional().describe('Default: every checkpoint of the grid'),
  windows,
  visitsPerWindow: z.number().int().min(1).default(1),
  maxGapMinutes: z.number().int().min(1).default(240),
  graceMinutes: z.number().int().min(0).default(30),
  timeZone,
  activeDays: z
    .object({ weekdays: z.array(z.enum(WEEKDAYS)).default([...WEEKDAYS]), dates: z.array(localDate).default([]), exceptDates: z.array(localDate).default([]) })
    .default({ weekdays: [...WEEKDAYS], dates: [], exceptDates: [] }),
  rescanMinutes: z.number().min(0).default(5).describe('Scans of one checkpoint closer than this count as one visit (antiFraud.rescanMinutes)'),
})

const clock = z.object({ driftPpm: z.number().default(0), offsetMs: z.number().int().default(0) }).default({ driftPpm: 0, offsetMs: 0 })

const patrolDevice = z.object({
  type: z.literal('patrol'),
  id,
  secret: z.string().min(1).optional(),
  gridId: id,
  badgeId: z.string().max(64).optional(),
  route: z.object({
    checkpointIds: z.array(id).optional().describe('Walk order; default: the grid checkpoints in file order'),
    rounds: z.array(hhmm).min(1).describe('Local start time of each daily round'),
    walkSpeedMps: z.number().positive().default(1.2),
    dwellS: z.number().min(0).default(20),
  }),
  clock,
  heartbeatIntervalS: z.number().int().min(30).default(300),
  battery: z.object({ startPct: z.number().min(0).max(100).default(100), drainPerHour: z.number().min(0).default(2) }).default({ startPct: 100, drainPerHour: 2 }),
})

const sensorDevice = z.object({
  type: z.literal('sensor'),
  id,
  secret: z.string().min(1).optional(),
  gridId: id.optional(),
  metric: z.enum(['water_level', 'tilt', 'smoke', 'temperature']),
  reportIntervalS: z.number().int().min(10).default(300),
  driftPerDay: z.number().default(0),
  clock,
  heartbeatIntervalS: z.number().int().min(30).default(3600),
})

const faultBase = { device: id, at: z.string().describe('HH:MM local on `day`, or an ISO 8601 instant'), day: z.number().int().min(1).default(1) }
const minutes = z.number().positive()
const fault = z.discriminatedUnion('kind', [
  z.object({ ...faultBase, kind: z.literal('offline'), durationMinutes: minutes }),
  z.object({ ...faultBase, kind: z.literal('skip'), checkpointId: id.optional(), durationMinutes: minutes }),
  z.object({ ...faultBase, kind: z.literal('clock_drift'), ppm: z.number() }),
  z.object({ ...faultBase, kind: z.literal('clock_reset'), toMs: z.number().int().min(1).default(Date.UTC(2000, 0, 1)) }),
  z.object({ ...faultBase, kind: z.literal('time_sync') }),
  z.object({ ...faultBase, kind: z.literal('duplicate'), count: z.number().int().min(1).default(1) }),
  z.object({ ...faultBase, kind: z.literal('ack_loss'), count: z.number().int().min(1).default(1) }),
  z.object({ ...faultBase, kind: z.literal('reboot'), durationMinutes: minutes.default(0.5) }),
  z.object({ ...faultBase, kind: z.literal('power_off'), durationMinutes: minutes.optional() }),
  z.object({ ...faultBase, kind: z.literal('low_battery'), pct: z.number().min(0).max(100).default(15) }),
  z.object({ ...faultBase, kind: z.enum(['sos', 'man_down', 'tamper']) }),
  z.object({ ...faultBase, kind: z.literal('anomaly'), value: z.number(), durationMinutes: minutes }),
])

export const scenarioSchema = z
  .object({
    name: z.string().min(1),
    description: z.string().optional(),
    start: localDate.describe('First simulated local date (starts 00:00 in timeZone)'),
    days: z.number().int().min(1).max(31).default(1),
    seed: z.number().int().default(1),
    timeZone,
    latencyMs: z.number().min(0).default(50),
    /** Minutes simulated after the last day so backlogs can upload (default 60). */
    drainMinutes: z.number().min(0).default(60),
    city: z.object({ name: z.string().optional(), districts: z.array(district).min(1) }),
    plans: z.array(plan).default([]),
    devices: z.array(z.discriminatedUnion('type', [patrolDevice, sensorDevice])).min(1),
    faults: z.array(fault).default([]),
  })
  .superRefine((s, ctx) => {
    const grids = new Map<string, Set<string>>()
    const seen = new Set<string>()
    const dup = (path: (string | number)[], what: string, v: string) => {
      if (seen.has(`${what}:${v}`)) ctx.addIssue({ code: 'custom', path, message: `duplicate ${what} id "${v}"` })
      seen.add(`${what}:${v}`)
    }
    s.city.districts.forEach((d, di) => {
      dup(['city', 'districts', di, 'id'], 'district', d.id)
      d.streets.forEach((st, si) => {
        dup(['city', 'districts', di, 'streets', si, 'id'], 'street', st.id)
        st.grids.forEach((g, gi) => {
          const p = ['city', 'districts', di, 'streets', si, 'grids', gi]
          dup([...p, 'id'], 'grid', g.id)
          grids.set(g.id, new Set(g.checkpoints.map((c) => c.id)))
          g.checkpoints.forEach((c, ci) => {
            dup([...p, 'checkpoints', ci, 'id'], 'checkpoint', c.id)
            if (c.method !== 'gps' && !c.tagId) ctx.addIssue({ code: 'custom', path: [...p, 'checkpoints', ci, 'tagId'], message: `required unless method is gps` })
            if (c.tagId) dup([...p, 'checkpoints', ci, 'tagId'], 'tag', c.tagId)
          })
        })
      })
    })
    const inGrid = (gridPath: (string | number)[], path: (string | number)[], gridId: string, ids: string[] | undefined) => {
      const cps = grids.get(gridId)
      if (!cps) return ctx.addIssue({ code: 'custom', path: gridPath, message: `unknown grid "${gridId}"` })
      ids?.forEach((c, i) => {
        if (!cps.has(c)) ctx.addIssue({ code: 'custom', path: [...path, i], message: `unknown checkpoint "${c}" in grid "${gridId}"` })
      })
    }
    s.plans.forEach((p, i) => inGrid(['plans', i, 'gridId'], ['plans', i, 'checkpointIds'], p.gridId, p.checkpointIds))
    const devices = new Map<string, (typeof s.devices)[number]>()
    s.devices.forEach((d, i) => {
      dup(['devices', i, 'id'], 'device', d.id)
      devices.set(d.id, d)
      if (d.type === 'patrol') inGrid(['devices', i, 'gridId'], ['devices', i, 'route', 'checkpointIds'], d.gridId, d.route.checkpointIds)
      else if (d.gridId && !grids.has(d.gridId)) ctx.addIssue({ code: 'custom', path: ['devices', i, 'gridId'], message: `unknown grid "${d.gridId}"` })
    })
    s.faults.forEach((f, i) => {
      const d = devices.get(f.device)
      if (!d) return ctx.addIssue({ code: 'custom', path: ['faults', i, 'device'], message: `unknown device "${f.device}"` })
      if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(f.at) && Number.isNaN(Date.parse(f.at)))
        ctx.addIssue({ code: 'custom', path: ['faults', i, 'at'], message: 'must be HH:MM or an ISO 8601 instant' })
      if (f.day > s.days) ctx.addIssue({ code: 'custom', path: ['faults', i, 'day'], message: `day ${f.day} is after the last simulated day (${s.days})` })
      const needs = { skip: 'patrol', low_battery: 'patrol', sos: 'patrol', man_down: 'patrol', tamper: 'patrol', anomaly: 'sensor' } as Record<string, string>
      const want = needs[f.kind]
      if (want && d.type !== want) ctx.addIssue({ code: 'custom', path: ['faults', i, 'kind'], message: `"${f.kind}" needs a ${want} device, "${f.device}" is a ${d.type}` })
      if (f.kind === 'skip' && f.checkpointId && d.type === 'patrol' && !grids.get(d.gridId)?.has(f.checkpointId))
        ctx.addIssue({ code: 'custom', path: ['faults', i, 'checkpointId'], message: `unknown checkpoint "${f.checkpointId}" in grid "${d.gridId}"` })
    })
  })

export type Scenario = z.output<typeof scenarioSchema>
export type ScenarioInput = z.input<typeof scenarioSchema>
export type ScenarioPlan = Scenario['plans'][number]
export type ScenarioFault = Scenario['faults'][number]
export type ScenarioDevice = Scenario['devices'][number]
export type ScenarioGrid = Scenario['city']['districts'][number]['streets'][number]['grids'][number]
export type ScenarioCheckpoint = ScenarioGrid['checkpoints'][number]

export class ScenarioError extends Error {
  override readonly name = 'ScenarioError'
  readonly code = 'GP_SIM_SCENARIO'
  constructor(readonly issues: { path: string; message: string }[]) {
    super(`invalid scenario:\n${issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n')}`)
  }
}

const pathOf = (p: readonly PropertyKey[]) => p.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('').replace(/^\./, '')

/** Validates a parsed scenario; throws ScenarioError listing every bad field. */
export function parseScenario(input: unknown): Scenario {
  const r = scenarioSchema.safeParse(input)
  if (!r.success) throw new ScenarioError(r.error.issues.map((i) => ({ path: pathOf(i.path), message: i.message })))
  return r.data
}

export function loadScenario(file: string): Scenario {
  let json: unknown
  try {
    json = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new ScenarioError([{ path: '', message: `${file}: ${(err as Error).message}` }])
  }
  return parseScenario(json)
}

/** Every grid with its district and street (the three-level hierarchy, flattened). */
export function gridsOf(s: Scenario): { districtId: string; streetId: string; grid: ScenarioGrid }[] {
  return s.city.districts.flatMap((d) => d.streets.flatMap((st) => st.grids.map((grid) => ({ districtId: d.id, streetId: st.id, grid }))))
}

/** The plan in the rules' input shape (src/rules/plans/schema.ts `planSchema`). */
export function toRulesPlan(s: Scenario, p: ScenarioPlan): Record<string, unknown> {
  const grid = gridsOf(s).find((g) => g.grid.id === p.gridId)!.grid
  const ids = p.checkpointIds ?? grid.checkpoints.map((c) => c.id)
  const byId = new Map(grid.checkpoints.map((c) => [c.id, c]))
  return {
    gridId: p.gridId,
    checkpoints: ids.map((cid) => {
      const c = byId.get(cid)!
      return { id: c.id, ...(c.name ? { name: c.name } : {}), tagIds: c.tagId ? [c.tagId] : [], lat: c.lat, lon: c.lon }
    }),
    windows: p.windows,
    visitsPerWindow: p.visitsPerWindow,
    maxGapMinutes: p.maxGapMinutes,
    graceMinutes: p.graceMinutes,
    timeZone: p.timeZone,
    activeDays: p.activeDays,
    antiFraud: { rescanMinutes: p.rescanMinutes },
  }
}
