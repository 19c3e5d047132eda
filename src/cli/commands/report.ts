import { Command, Option } from 'commander'
import { pino } from 'pino'
import type { CoverageResult } from '../../rules/coverage/evaluate.ts'
import { coverageQuery } from '../../rules/coverage/query.ts'
import { planInForce } from '../../rules/plans/schema.ts'
import { isCurrentDigest, type CoverageChange } from '../../rules/revisions.ts'
import { createRunner, type ReportDetail } from '../../rules/runner.ts'
import type { CoverageReportRow } from '../../store/types.ts'
import { requireLocalDate } from '../dates.ts'
import { printTable, withStore } from '../with-store.ts'
import { num } from '../options.ts'
import { err, out } from '../io.ts'

type Format = 'table' | 'json' | 'csv'

/** RFC 4180 field: quoted when it holds a comma, quote or line break. */
const csvField = (v: unknown) => {
  const s = v === null || v === undefined ? '' : String(v)
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

/** One row per (checkpoint, window): its verdict and the check-ins that prove it. */
export function coverageCsv(r: CoverageReportRow): string {
  const result = r.result as CoverageResult
  const windows = new Map(result.windows.map((w) => [w.key, w]))
  const head = ['grid', 'date', 'revision', 'watermark', 'window', 'window_start', 'window_end', 'checkpoint', 'status', 'visits', 'required', 'evidence']
  const lines = [head.join(',')]
  for (const c of result.cells) {
    const w = windows.get(c.windowKey)
    const row = [r.gridId, r.localDate, r.revision, iso(r.watermarkMs), w?.name ?? c.windowKey, iso(w?.start ?? null), iso(w?.end ?? null), c.checkpointId, c.status, c.visits, c.required, c.evidence.join(' ')]
    lines.push(row.map(csvField).join(','))
  }
  return lines.join('\r\n') + '\r\n'
}

/** `summary`: the stored report's (the header speaks for the stored revision; the cells are the derived detail). */
function printReport(r: CoverageReportRow, format: Format, summary: CoverageResult['summary']): void {
  if (format === 'json') {
    out(JSON.stringify(r, null, 2) + '\n')
    return
  }
  if (format === 'csv') {
    out(coverageCsv(r))
    return
  }
  const result = r.result as CoverageResult
  const s = summary
  out(
    `grid ${r.gridId}  date ${r.localDate}  revision ${r.revision}  watermark ${iso(r.watermarkMs) ?? '-'}  evaluated ${iso(r.evaluatedAtMs)}\n` +
      `coverage ${s.coveragePct ?? '-'}%  met ${s.met}  missed ${s.missed}  pending ${s.pending}  of ${s.required}\n\n`,
  )
  const names = new Map(result.windows.map((w) => [w.key, w.name]))
  printTable(
    result.cells.map((c) => ({ window: names.get(c.windowKey) ?? c.windowKey, checkpoint: c.checkpointId, status: c.status, visits: `${c.visits}/${c.required}`, evidence: c.evidence.join(' ') })),
    false,
  )
  if (result.gaps.length > 0) {
    out('\ngaps\n')
    printTable(result.gaps.map((g) => ({ checkpoint: g.checkpointId, from: iso(g.from), to: iso(g.to), minutes: g.minutes, final: g.final })), false)
  }
  if (result.signals.length > 0) {
    out('\nsignals\n')
    printTable(result.signals.map((x) => ({ kind: x.kind, device: x.deviceId, at: iso(x.at), detail: describeSignal(x), checkins: x.checkinIds.join(' ') })), false)
  }
}

/** A signal's detail in words (README, "signals"); JSON and CSV keep the fields. */
function describeSignal(x: CoverageResult['signals'][number]): string {
  const d = x.detail
  switch (x.kind) {
    case 'rescan':
      return `read again after ${d['seconds']} s`
    case 'impossible_travel':
      return `${d['meters']} m in ${d['seconds']} s (${d['kmh']} km/h)`
    case 'foreign_device':
      return `device assigned to grid ${d['assignedGrid']}`
    case 'clock_implausible':
      return `timed up to ${d['worstSkewSeconds']} s away from its receipt`
    case 'unknown_tag':
      // '' only in reports stored before outside_geofence (engine 1)
      return d['tagId'] === '' ? 'GPS fix outside every geofence' : `tag ${d['tagId']} is in no plan or registry`
    case 'outside_geofence':
      if (d['lat'] === undefined) return 'GPS check-in without a fix'
      return d['nearestCheckpoint'] === undefined
        ? `GPS fix ${d['lat']}, ${d['lon']} outside every geofence (no checkpoint of the plan has a position)`
        : `GPS fix ${d['lat']}, ${d['lon']} outside every geofence: ${d['meters']} m from ${d['nearestCheckpoint']}`
    case 'unplanned_checkpoint':
      return d['gridId'] === undefined
        ? `checkpoint ${d['checkpointId']}, not in this grid's plan`
        : `checkpoint ${d['checkpointId']} of grid ${d['gridId']}, not in this grid's plan`
    default:
      return JSON.stringify(d)
  }
}

/**
 * The derived detail should restate the stored report's exceptions exactly.
 * When it does not, say so: on stdout after a table, on stderr for json and
 * csv (which stay machine-readable).
 */
function warnDisagreements(r: CoverageReportRow, d: ReportDetail, format: Format): void {
  if (d.disagreements.length === 0) return
  const lines = [
    `WARNING: the cell detail above was derived now from the check-ins received up to the report's watermark (${iso(r.watermarkMs) ?? '-'}),`,
    `and it does not agree with stored revision ${r.revision} in ${d.disagreements.length} place(s):`,
    ...d.disagreements.slice(0, 20).map((c) => `  ${describeChange(c)}`),
    ...(d.disagreements.length > 20 ? [`  … and ${d.disagreements.length - 20} more`] : []),
    // A report of an earlier engine version (revisions.ts, ENGINE_VERSION) may disagree on the same rows.
    ...(isCurrentDigest(r.digest)
      ? []
      : [`Revision ${r.revision} was computed by an earlier version of the rules engine, which may judge the same check-ins differently (a GPS fix outside every geofence was an unknown_tag with an empty tag; a scan of a registered checkpoint not in the plan was an unknown_tag); otherwise:`]),
    'Rows were committed with a receipt time older than that watermark after the report was computed (or data was removed).',
    'The stored verdicts, gaps and cases stand; re-evaluate (--evaluate) to store a revision that includes those rows.',
  ]
  ;(format === 'table' ? out : err)((format === 'table' ? '\n' : '') + lines.join('\n') + '\n')
}

function describeChange(c: CoverageChange): string {
  switch (c.kind) {
    case 'cell':
      return `cell ${c.checkpointId} ${c.windowKey}: stored ${c.from ?? 'absent'}, detail ${c.to ?? 'absent'}`
    case 'gap_opened':
    case 'gap_closed':
    case 'gap_changed':
      return `gap ${c.checkpointId} from ${iso(c.from)}: ${c.kind === 'gap_opened' ? 'only in the detail' : c.kind === 'gap_closed' ? 'only in the stored report' : 'differs'}`
    case 'signal_added':
    case 'signal_removed':
      return `signal ${c.signal.kind} ${c.signal.deviceId} ${c.signal.checkinIds.join(' ')}: only in the ${c.kind === 'signal_added' ? 'detail' : 'stored report'}`
    case 'figures':
      return `figures of ${c.subject} differ`
    case 'coverage':
      return `coverage: stored ${c.before ?? '-'}%, detail ${c.after ?? '-'}%`
  }
}

/** One line per change a revision made to the one before it (history wording: before → after). */
export function describeRevisionChange(c: CoverageChange): string {
  switch (c.kind) {
    case 'cell': {
      const ev = [...c.evidenceAdded.map((x) => `+${x}`), ...c.evidenceRemoved.map((x) => `-${x}`)].join(' ')
      return `cell ${c.checkpointId} ${c.windowKey}: ${c.from ?? 'absent'} → ${c.to ?? 'absent'}${ev ? ` (evidence ${ev})` : ''}`
    }
    case 'gap_opened':
      return `gap ${c.checkpointId} from ${iso(c.from)}: opened, ${c.after?.minutes ?? '?'} min to ${iso(c.after?.to ?? null)}`
    case 'gap_closed':
      return `gap ${c.checkpointId} from ${iso(c.from)}: closed (was ${c.before?.minutes ?? '?'} min)`
    case 'gap_changed':
      return `gap ${c.checkpointId} from ${iso(c.from)}: ${c.before?.minutes ?? '?'} → ${c.after?.minutes ?? '?'} min${c.after?.final ? ', final' : ''}`
    case 'signal_added':
    case 'signal_removed':
      return `signal ${c.signal.kind} ${c.signal.deviceId} ${c.signal.checkinIds.join(' ')}: ${c.kind === 'signal_added' ? 'added' : 'removed'}`
    case 'figures':
      return `figures of ${c.subject} changed`
    case 'coverage':
      return `coverage ${c.before ?? '-'}% → ${c.after ?? '-'}%`
  }
}

/** Revision numbers missing below the last one kept: provisional revisions replaced (reports.saveMany). */
function replacedRanges(kept: readonly number[]): string[] {
  const out: string[] = []
  let next = 1
  for (const r of kept) {
    if (r > next) out.push(r - 1 === next ? `${next}` : `${next}–${r - 1}`)
    next = r + 1
  }
  return out
}

export function registerReport(program: Command): void {
  const report = program.command('report').description('Patrol compliance reports')
  report
    .command('day')
    .description(
      "Every grid's coverage on one local day, worst first: the latest stored report of each grid (coverage %, met, missed, pending). " +
        'Grids without a stored report for the day are not listed',
    )
    .requiredOption('--date <YYYY-MM-DD>', 'local date')
    .option('--below <percent>', 'only grids whose coverage is below this (grids with nothing decided yet are kept)')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json', 'csv']).default('table'))
    .action(async (o: { date: string; below?: string; format: Format }) => {
      requireLocalDate('--date', o.date)
      const below = o.below === undefined ? undefined : Number(o.below)
      if (below !== undefined && !(Number.isFinite(below) && below >= 0 && below <= 100)) throw new Error(`--below must be a percentage 0–100, got "${o.below}"`)
      const { heads, patrolled } = await withStore(async (store) => {
        const plans = await createRunner({ store, log: pino({ level: 'silent' }) }).plans()
        // Grids whose plan in force patrols that date (some window): each should have a report.
        const patrolled = [...plans]
          .filter(([, versions]) => {
            const plan = planInForce(versions, o.date)
            return plan !== undefined && coverageQuery(plan, o.date).windows.length > 0
          })
          .map(([gridId]) => gridId)
        return { heads: await store.reports.ofDate(o.date), patrolled }
      })
      const rows = heads
        .filter((r) => below === undefined || r.coveragePct === null || r.coveragePct < below)
        // worst first; nothing decided yet (coverage null) last
        .sort((a, b) => (a.coveragePct ?? Infinity) - (b.coveragePct ?? Infinity) || (a.gridId < b.gridId ? -1 : a.gridId > b.gridId ? 1 : 0))
        .map((r) => ({
          grid: r.gridId, revision: r.revision, coverage: r.coveragePct, met: r.met, missed: r.missed, pending: r.pending,
          evaluated: iso(r.evaluatedAtMs), watermark: iso(r.watermarkMs),
        }))
      if (o.format === 'json') out(JSON.stringify(rows, null, 2) + '\n')
      else if (o.format === 'csv') {
        const head = ['grid', 'revision', 'coverage', 'met', 'missed', 'pending', 'evaluated', 'watermark'] as const
        out([head.join(','), ...rows.map((r) => head.map((k) => csvField(r[k])).join(','))].join('\r\n') + '\r\n')
      } else {
        printTable(rows.map((r) => ({ ...r, coverage: r.coverage === null ? '-' : `${r.coverage}%` })), false)
        out(`\n${rows.length} of ${heads.length} grid(s) with a report for ${o.date}${below === undefined ? '' : ` (below ${below}%)`}\n`)
      }
      // Not listed is not the same as fine: name the grids the rules have not evaluated.
      const reported = new Set(heads.map((h) => h.gridId))
      const missing = patrolled.filter((g) => !reported.has(g)).sort()
      if (missing.length > 0) {
        const names = missing.slice(0, 20).join(', ') + (missing.length > 20 ? `, … (${missing.length - 20} more)` : '')
        const line =
          `NOTE: ${missing.length} grid(s) patrolled on ${o.date} by their plan have no report yet: ${names}. The scheduler (gridpatrol start) ` +
          `evaluates each window when it closes plus its grace; report coverage --grid G --date ${o.date} evaluates one now.\n`
        ;(o.format === 'table' ? out : err)((o.format === 'table' ? '\n' : '') + line)
      }
    })
  report
    .command('revisions')
    .description(
      "The stored revisions of one grid's coverage report for one local day, oldest first: when each was evaluated, " +
        'its ingest watermark, its figures and what it changed from the revision before it (late uploads, closed windows)',
    )
    .requiredOption('--grid <gridId>', 'grid')
    .requiredOption('--date <YYYY-MM-DD>', 'local date (in the plan time zone)')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (o: { grid: string; date: string; format: 'table' | 'json' }) => {
      requireLocalDate('--date', o.date)
      const revisions = await withStore((store) => store.reports.revisions(o.grid, o.date))
      if (revisions.length === 0) throw new Error(`no coverage report for grid "${o.grid}" on ${o.date} (report coverage evaluates one)`)
      if (o.format === 'json') {
        out(JSON.stringify(revisions, null, 2) + '\n')
        return
      }
      printTable(
        revisions.map((r) => ({
          revision: r.revision,
          evaluated: iso(r.evaluatedAtMs),
          watermark: iso(r.watermarkMs),
          plan: r.planVersion,
          coverage: r.coveragePct === null ? '-' : `${r.coveragePct}%`,
          met: r.met,
          missed: r.missed,
          pending: r.pending,
          changes: r.changes.length,
        })),
        false,
      )
      for (const r of revisions) {
        const changes = r.changes as CoverageChange[]
        if (changes.length === 0) continue
        out(`\nrevision ${r.revision}${r.pending > 0 ? ' (provisional)' : ''}:\n`)
        for (const c of changes.slice(0, 50)) out(`  ${describeRevisionChange(c)}\n`)
        if (changes.length > 50) out(`  … and ${changes.length - 50} more (--format json lists them all)\n`)
      }
      const replaced = replacedRanges(revisions.map((r) => r.revision))
      if (replaced.length > 0) {
        out(
          `\nRevision(s) ${replaced.join(', ')}: provisional (cells pending), replaced by the next revision; its changes are counted from them ` +
            '(GRIDPATROL_KEEP_PROVISIONAL_REPORTS=1 keeps them).\n',
        )
      }
    })
  report
    .command('coverage')
    .description(
      "Coverage of one grid on one local day: verdict per (checkpoint, window) with evidence, gaps, anti-fraud signals. " +
        "The stored report keeps its exceptions; the per-cell evidence is derived from the check-ins received up to the report's watermark and checked against it",
    )
    .requiredOption('--grid <gridId>', 'grid')
    .requiredOption('--date <YYYY-MM-DD>', 'local date (in the plan time zone)')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json', 'csv']).default('table'))
    .option('--revision <n>', 'a stored revision instead of the latest', num('--revision', { whole: true }))
    .option('--evaluate', 'evaluate now first (stores a new revision only if the result changed); default when none is stored')
    .action(async (o: { grid: string; date: string; format: Format; revision?: number; evaluate?: boolean }) => {
      requireLocalDate('--date', o.date)
      const found = await withStore(async (store) => {
        const runner = createRunner({ store, log: pino({ level: 'silent' }) })
        const stored = await (async () => {
          if (o.revision !== undefined) return store.reports.get(o.grid, o.date, o.revision)
          if (o.evaluate || !(await store.reports.latest(o.grid, o.date))) {
            const out = await runner.evaluateDay(o.grid, o.date)
            if (out.status === 'no_plan') throw new Error(`grid "${o.grid}" has no patrol plan in force on ${o.date} (gridpatrol plan set)`)
            if (out.status === 'expired') {
              const days = store.uplinks.retentionDays
              throw new Error(
                `${o.date} is past the check-in retention (GRIDPATROL_RETENTION_DAYS=${days}: check-ins are kept for ${days} day(s)), so grid "${o.grid}" ` +
                  (out.revision === null
                    ? 'has no coverage report for it and it cannot be evaluated: its check-ins may have been dropped'
                    : `is not re-evaluated (its dropped check-ins would count as missed visits); stored revision ${out.revision} stands: run without --evaluate to print it`),
              )
            }
          }
          return store.reports.latest(o.grid, o.date)
        })()
        // Stored reports keep only the exceptions; the per-cell detail is derived as of the report's watermark.
        return stored && { row: stored, detail: await runner.reportDetail(stored), watermarkNow: await store.watermark.current() }
      })
      if (!found) {
        const latest = o.revision === undefined ? undefined : await withStore((store) => store.reports.latest(o.grid, o.date))
        if (latest && o.revision !== undefined && o.revision < latest.revision) {
          throw new Error(
            `revision ${o.revision} of grid "${o.grid}" on ${o.date} was provisional (cells pending) and was replaced by a later revision; ` +
              `the latest is ${latest.revision} (report revisions lists the revisions kept)`,
          )
        }
        throw new Error(`no coverage report for grid "${o.grid}" on ${o.date}${o.revision ? ` revision ${o.revision}` : ''}`)
      }
      printReport({ ...found.row, result: found.detail.result }, o.format, (found.row.result as CoverageResult).summary)
      warnDisagreements(found.row, found.detail, o.format)
      const { summary } = found.row.result as CoverageResult
      if (o.revision === undefined && summary.pending > 0 && found.watermarkNow !== null && found.watermarkNow > (found.row.watermarkMs ?? 0)) {
        // Mid-day: the stored revision is as of its last evaluation; windows are judged when they close plus their grace.
        const line =
          `NOTE: ${summary.pending} cell(s) were pending when revision ${found.row.revision} was evaluated (${new Date(found.row.evaluatedAtMs).toISOString()}), ` +
          `and data has been received since (ingest watermark now ${new Date(found.watermarkNow).toISOString()}). The scheduler judges each window when it ` +
          `closes plus its grace; --evaluate evaluates now.\n`
        ;(o.format === 'table' ? out : err)((o.format === 'table' ? '\n' : '') + line)
      }
      if (found.detail.source === 'past_retention') {
        const met = (found.row.result as CoverageResult).summary.met
        const line = `NOTE: ${o.date} is past the check-in retention: only the stored report's exceptions are listed above; its ${met} met cell(s) are not listed, and the check-ins that proved them are no longer kept.\n`
        ;(o.format === 'table' ? out : err)((o.format === 'table' ? '\n' : '') + line)
      }
    })
}
