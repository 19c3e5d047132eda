import { Command, Option } from 'commander'
import { pino } from 'pino'
import type { CoverageResult } from '../../rules/coverage/evaluate.ts'
import { createRunner } from '../../rules/runner.ts'
import type { CoverageReportRow } from '../../store/types.ts'
import { printTable, withStore } from '../with-store.ts'

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

function printReport(r: CoverageReportRow, format: Format): void {
  if (format === 'json') {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n')
    return
  }
  if (format === 'csv') {
    process.stdout.write(coverageCsv(r))
    return
  }
  const result = r.result as CoverageResult
  const s = result.summary
  process.stdout.write(
    `grid ${r.gridId}  date ${r.localDate}  revision ${r.revision}  watermark ${iso(r.watermarkMs) ?? '-'}  evaluated ${iso(r.evaluatedAtMs)}\n` +
      `coverage ${s.coveragePct ?? '-'}%  met ${s.met}  missed ${s.missed}  pending ${s.pending}  of ${s.required}\n\n`,
  )
  const names = new Map(result.windows.map((w) => [w.key, w.name]))
  printTable(
    result.cells.map((c) => ({ window: names.get(c.windowKey) ?? c.windowKey, checkpoint: c.checkpointId, status: c.status, visits: `${c.visits}/${c.required}`, evidence: c.evidence.join(' ') })),
    false,
  )
  if (result.gaps.length > 0) {
    process.stdout.write('\ngaps\n')
    printTable(result.gaps.map((g) => ({ checkpoint: g.checkpointId, from: iso(g.from), to: iso(g.to), minutes: g.minutes, final: g.final })), false)
  }
  if (result.signals.length > 0) {
    process.stdout.write('\nsignals\n')
    printTable(result.signals.map((x) => ({ kind: x.kind, device: x.deviceId, at: iso(x.at), checkins: x.checkinIds.join(' '), detail: JSON.stringify(x.detail) })), false)
  }
}

export function registerReport(program: Command): void {
  const report = program.command('report').description('Patrol compliance reports')
  report
    .command('coverage')
    .description('Coverage of one grid on one local day: verdict per (checkpoint, window) with evidence, gaps, anti-fraud signals')
    .requiredOption('--grid <gridId>', 'grid')
    .requiredOption('--date <YYYY-MM-DD>', 'local date (in the plan time zone)')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json', 'csv']).default('table'))
    .option('--revision <n>', 'a stored revision instead of the latest')
    .option('--evaluate', 'evaluate now first (stores a new revision only if the result changed); default when none is stored')
    .action(async (o: { grid: string; date: string; format: Format; revision?: string; evaluate?: boolean }) => {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(o.date)) throw new Error('--date must be YYYY-MM-DD')
      const row = await withStore(async (store) => {
        if (o.revision !== undefined) return store.reports.get(o.grid, o.date, Number(o.revision))
        if (o.evaluate || !(await store.reports.latest(o.grid, o.date))) {
          const out = await createRunner({ store, log: pino({ level: 'silent' }) }).evaluateDay(o.grid, o.date)
          if (out.status === 'no_plan') throw new Error(`grid "${o.grid}" has no patrol plan in force on ${o.date} (gridpatrol plan set)`)
        }
        return store.reports.latest(o.grid, o.date)
      })
      if (!row) throw new Error(`no coverage report for grid "${o.grid}" on ${o.date}${o.revision ? ` revision ${o.revision}` : ''}`)
      printReport(row, o.format)
    })
}
