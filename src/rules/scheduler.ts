import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { z } from 'zod'
import type { Store } from '../store/types.ts'
import { windowsForDay } from './coverage/windows.ts'
import type { PatrolPlan } from './plans/schema.ts'
import { planInForce } from './plans/schema.ts'
import { createRunner, runnerConfigSchema, type DayOutcome, type Logger, type Runner, type RulesStep } from './runner.ts'
import { addDays, instantToLocal, type Instant } from './tz.ts'

const MINUTE = 60_000

export const schedulerConfigSchema = z
  .object({
    tickSeconds: z.number().positive().default(60).describe('How often the scheduler looks for closed windows and late uploads'),
    deviceRulesSeconds: z.number().positive().default(300).describe('How often the offline, battery, alarm and threshold rules run'),
    lateOverlapSeconds: z
      .number()
      .min(0)
      .default(120)
      .describe('Re-read this much before the last watermark (a transaction may commit after a later receipt time)'),
    catchUpDays: z.number().int().min(0).default(1).describe('Days before today evaluated on start'),
    analyzeMinutes: z
      .number()
      .min(0)
      .default(60)
      .describe("Embedded database: refresh the planner's statistics at most this often, before a coverage pass (0 = never; the server's autovacuum does it there)"),
  })
  .prefault({})

export const rulesEngineConfigSchema = z
  .object({ runner: runnerConfigSchema, scheduler: schedulerConfigSchema })
  .prefault({})
export type RulesEngineConfig = z.input<typeof rulesEngineConfigSchema>

/** Timers, injectable for tests (virtual time). */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export interface RulesEngine extends Pick<Runner, 'evaluateDay' | 'evaluateDays' | 'runDeviceRules' | 'transitionCase'> {
  /**
   * Starts the first pass (catch-up of the last days) in the background — on a
   * large city it takes a while and must not hold up the rest of start-up — and
   * then one every tickSeconds.
   */
  start(): Promise<void>
  /** Resolves when the pass in flight (if any) has finished. */
  idle(): Promise<void>
  /** Stops the timer and waits for a running tick. */
  stop(): Promise<void>
  /** One scheduler pass at now(): closed windows, late uploads, device rules when due. */
  tick(): Promise<{ evaluated: DayOutcome[]; deviceRules: boolean }>
}

/**
 * The rules engine for src/main.ts: a runner plus the scheduler that decides
 * what to evaluate when (DESIGN: windows evaluated as they close, after a grace
 * period for late store-and-forward uploads; offline checks periodic).
 *
 *  - a grid-day is evaluated when one of its windows closes (end + grace) or,
 *    so that gaps and 'now' move, when its window ends;
 *  - check-ins received since the last watermark (late uploads, any device time)
 *    mark the grid-days they fall in for re-evaluation;
 *  - the device rules run every deviceRulesSeconds.
 */
export function createRulesEngine(deps: {
  store: Store
  log: Logger
  now?: () => Instant
  config?: RulesEngineConfig
  timers?: Timers
  /** Where the rules' metrics go (src/main.ts: the /metrics registry); none without it. */
  registry?: Registry
}): RulesEngine {
  const { store, log } = deps
  const now = deps.now ?? Date.now
  const config = rulesEngineConfigSchema.parse(deps.config ?? {})
  const timers: Timers = deps.timers ?? { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) }
  const metrics = deps.registry ? rulesMetrics(deps.registry) : undefined
  // Seconds per step of the tick in progress (the info line), and the metric.
  const steps = new Map<RulesStep, number>()
  const runner = createRunner({
    store,
    log,
    now,
    config: config.runner,
    observe: (step, seconds) => {
      steps.set(step, (steps.get(step) ?? 0) + seconds)
      metrics?.stepSeconds.inc({ step }, seconds)
    },
  })
  const sc = config.scheduler

  let lastTick: Instant | undefined
  let lastWatermark: Instant | undefined
  let lastDeviceRules = -Infinity
  let lastAnalyze = -Infinity
  let timer: unknown
  let running: Promise<unknown> | undefined
  let stopped = true

  async function tick() {
    const at = now()
    const t0 = performance.now()
    steps.clear()
    const plans = await runner.plans()
    const due = new Map<string, { gridId: string; localDate: string }>()
    const mark = (gridId: string, localDate: string) => due.set(`${gridId}\u0000${localDate}`, { gridId, localDate })

    // Windows that ended or closed (end + grace) since the last tick.
    const since = lastTick ?? at - (sc.catchUpDays + 1) * 1440 * MINUTE
    for (const [gridId, versions] of plans) {
      for (const date of localDates(versions, since, at)) {
        const plan = planInForce(versions, date)
        if (!plan) continue
        const grace = plan.graceMinutes * MINUTE
        const crossed = (x: Instant) => x > since && x <= at
        const started = windowsForDay(plan, date).filter((w) => w.start <= at)
        if (started.length > 0 && (lastTick === undefined || started.some((w) => crossed(w.end) || crossed(w.end + grace)))) mark(gridId, date)
      }
    }

    // Late uploads: grid-days of check-ins received since the last watermark,
    // matched to plans by tag or checkpoint id, and by the device's grid, that
    // are timed before the end of a window of that grid-day which has ended: a
    // scan inside a window still open is evaluated when that window ends (the
    // mark above), so on-time scans do not re-evaluate their grid-day every tick
    // (one grid-day with a scan a few minutes apart got a new report revision
    // on ~220 ticks a day; now one per window end and close, plus late data).
    // A time sync counts too: the check-ins it re-times (its device's rows since
    // the previous sync) are touched as if received again, at their earlier time.
    const watermark = await store.watermark.current()
    if (watermark !== null && lastWatermark !== undefined && watermark > lastWatermark) {
      const byTag = new Map<string, Set<string>>()
      for (const [gridId, versions] of plans) {
        for (const cp of versions.flatMap((v) => v.checkpoints)) {
          for (const tag of [cp.id, ...cp.tagIds]) byTag.set(tag, (byTag.get(tag) ?? new Set()).add(gridId))
        }
      }
      const touched = await store.coverage.touched(lastWatermark - sc.lateOverlapSeconds * 1000, watermark)
      for (const t of touched) {
        const grids = new Set([...(byTag.get(t.tag) ?? []), ...(t.deviceGridId !== null ? [t.deviceGridId] : [])])
        for (const gridId of grids) {
          const versions = plans.get(gridId)
          if (!versions) continue
          // A scan may belong to a window of the previous local date (window crossing midnight),
          // or be the next date's previous visit (a gap continued over midnight); the runner
          // re-reads only the grid-days whose scan bounds it falls in (incremental evaluation).
          for (const date of localDates(versions, t.fromMs - 1440 * MINUTE, t.toMs + 1440 * MINUTE)) {
            const plan = planInForce(versions, date)
            if (plan && windowsForDay(plan, date).some((w) => w.end <= at && t.firstAtMs < w.end)) mark(gridId, date)
          }
        }
      }
    }
    lastWatermark = Math.max(lastWatermark ?? 0, watermark ?? 0)

    if (due.size > 0 && sc.analyzeMinutes > 0 && at - lastAnalyze >= sc.analyzeMinutes * MINUTE) {
      // PGlite never gathers statistics by itself: stage A's plans are better with them (≈ 5 % CPU).
      const t0 = performance.now()
      if (await store.analyze()) log.debug({ ms: Math.round(performance.now() - t0) }, 'planner statistics refreshed')
      lastAnalyze = at
    }
    const evaluated = due.size > 0 ? await runner.evaluateDays([...due.values()]) : []
    let deviceRules = false
    if (at - lastDeviceRules >= sc.deviceRulesSeconds * 1000) {
      await runner.runDeviceRules()
      lastDeviceRules = at
      deviceRules = true
    }
    lastTick = at
    const revised = evaluated.filter((o) => o.status === 'revised').length
    const skipped = evaluated.filter((o) => o.skipped).length
    const seconds = (performance.now() - t0) / 1000
    if (metrics) {
      metrics.tickSeconds.observe(seconds)
      metrics.lastTick.set(Date.now() / 1000)
      for (const o of evaluated) {
        metrics.gridDays.inc({ outcome: o.skipped ? 'skipped' : o.status })
        if (o.casesOpened > 0) metrics.cases.inc({ action: 'opened' }, o.casesOpened)
        if (o.casesUpdated > 0) metrics.cases.inc({ action: 'updated' }, o.casesUpdated)
        if (o.casesResolved > 0) metrics.cases.inc({ action: 'resolved' }, o.casesResolved)
      }
    }
    if (evaluated.length > 0) {
      const secs = Object.fromEntries([...steps].map(([k, v]) => [k, Math.round(v * 1000) / 1000]))
      log.info({ evaluated: evaluated.length - skipped, skipped, revised, seconds: Math.round(seconds * 1000) / 1000, steps: secs }, 'coverage evaluated')
    }
    return { evaluated, deviceRules }
  }

  const guarded = async () => {
    try {
      return await tick()
    } catch (err) {
      // A failing pass is logged and retried next tick; it never stops the engine.
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'rules tick failed')
      metrics?.failures.inc()
      return { evaluated: [], deviceRules: false }
    }
  }
  const schedule = () => {
    if (stopped) return
    timer = timers.setTimeout(() => {
      running = guarded().finally(schedule)
    }, sc.tickSeconds * 1000)
  }

  return {
    evaluateDay: runner.evaluateDay,
    evaluateDays: runner.evaluateDays,
    runDeviceRules: runner.runDeviceRules,
    transitionCase: runner.transitionCase,
    tick: () => {
      const p = (running ?? Promise.resolve()).then(tick)
      running = p.catch(() => undefined)
      return p
    },
    async start() {
      if (!stopped) return
      stopped = false
      running = guarded().finally(schedule)
    },
    async idle() {
      await running
    },
    async stop() {
      stopped = true
      if (timer !== undefined) timers.clearTimeout(timer)
      await running
    },
  }
}

/**
 * What an operator watches to know the rules keep up: how long ticks take and
 * where the time goes, what they decided, when the last one finished, failures.
 */
function rulesMetrics(registry: Registry) {
  const registers = [registry]
  return {
    tickSeconds: new Histogram({
      name: 'gridpatrol_rules_tick_seconds',
      help: 'Duration of a rules scheduler pass (coverage of the grid-days due, device rules when due)',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
      registers,
    }),
    stepSeconds: new Counter({
      name: 'gridpatrol_rules_step_seconds_total',
      help: 'Time spent per step of coverage evaluation (skip_check, stage_a, evaluate, cases, reports); passes overlap, so steps can sum to more than the wall time',
      labelNames: ['step'],
      registers,
    }),
    gridDays: new Counter({
      name: 'gridpatrol_rules_grid_days_total',
      help: 'Grid-days evaluated by the scheduler, by outcome (revised: a new report revision; unchanged: re-read, same report; skipped: nothing new to read; no_plan; expired: past the check-in retention, not evaluated)',
      labelNames: ['outcome'],
      registers,
    }),
    cases: new Counter({ name: 'gridpatrol_rules_coverage_cases_total', help: 'Coverage cases opened, updated and resolved by scheduled evaluation', labelNames: ['action'], registers }),
    lastTick: new Gauge({ name: 'gridpatrol_rules_last_tick_timestamp_seconds', help: 'When the last rules scheduler pass finished without error (Unix seconds)', registers }),
    failures: new Counter({ name: 'gridpatrol_rules_tick_failures_total', help: 'Rules scheduler passes that failed (logged; retried at the next tick)', registers }),
  }
}

/** Local dates (in each plan version's zone) touched by [from, to]. */
function localDates(versions: readonly PatrolPlan[], from: Instant, to: Instant): string[] {
  const out = new Set<string>()
  for (const tz of new Set(versions.map((v) => v.timeZone))) {
    const last = instantToLocal(tz, to).date
    for (let d = instantToLocal(tz, from).date, i = 0; d <= last && i < 400; d = addDays(d, 1), i++) out.add(d)
  }
  return [...out].sort()
}
