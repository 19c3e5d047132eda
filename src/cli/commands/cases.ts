import { Command, Option } from 'commander'
import { pino } from 'pino'
import { effectiveRulesConfig } from '../../rules/cases/config.ts'
import { overdueFlags, type MetricsGroup } from '../../rules/cases/metrics.ts'
import { caseStats } from '../../rules/cases/stats.ts'
import { CASE_STATES, ROLES, type CaseState, type Role } from '../../rules/cases/workflow.ts'
import { RulesError } from '../../rules/errors.ts'
import { createRunner } from '../../rules/runner.ts'
import { addDays, localToInstant } from '../../rules/tz.ts'
import type { CaseRow } from '../../store/types.ts'
import { requireLocalDate } from '../dates.ts'
import { printTable, withStore } from '../with-store.ts'
import { num } from '../options.ts'
import { out, err } from '../io.ts'

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())
/** RFC 4180 field: quoted when it holds a comma, quote or line break. */
const csvField = (v: unknown) => {
  const s = v === null || v === undefined ? '' : String(v)
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}
const overdue = (c: CaseRow, now: number) => overdueFlags(c, now).join('+') || null
const summary = (c: CaseRow, now: number) => ({
  id: c.id,
  state: c.state,
  priority: c.priority,
  grid: c.gridId,
  rule: c.rule,
  subject: c.subject,
  window: c.windowKey,
  department: c.department,
  stageDue: iso(c.stageDueAtMs),
  closureDue: iso(c.closureDueAtMs),
  overdue: overdue(c, now),
  title: c.title,
})

export function registerCases(program: Command): void {
  const cases = program.command('cases').description('Cases raised by the rules: list, show with audit trail, transition through the workflow')
  cases
    .command('list')
    .description('List cases')
    .option('--grid <gridId>', 'only this grid')
    .addOption(new Option('--state <state...>', 'only these states').choices([...CASE_STATES]))
    .option('--rule <rule>', 'only cases of this rule (patrol_miss, patrol_gap, device_offline, ...)')
    .option('--overdue', 'only cases past their stage deadline now')
    .option('--date <YYYY-MM-DD>', 'only cases from the coverage report of this local date')
    .option('--department <name>', 'only cases dispatched to (or due to go to) this department')
    .option('--limit <n>', 'at most this many, oldest first', '1000')
    .option('--json', 'JSON output')
    .action(
      async (o: { grid?: string; state?: CaseState[]; rule?: string; overdue?: boolean; date?: string; department?: string; limit: string; json?: boolean }) => {
        if (o.date !== undefined) requireLocalDate('--date', o.date)
        const limit = Number(o.limit)
        if (!Number.isInteger(limit) || limit < 1) throw new Error(`--limit must be a whole number ≥ 1, got "${o.limit}"`)
        const now = Date.now()
        const filter = {
          ...(o.grid ? { gridId: o.grid } : {}),
          ...(o.state ? { states: o.state } : {}),
          ...(o.rule ? { rule: o.rule } : {}),
          ...(o.overdue ? { overdueAtMs: now } : {}),
          ...(o.date ? { reportDate: o.date } : {}),
          ...(o.department ? { department: o.department } : {}),
        }
        const { rows, total } = await withStore(async (store) => {
          const rows = await store.cases.list({ ...filter, limit })
          return { rows, total: rows.length < limit ? rows.length : await store.cases.count(filter) }
        })
        // overdue: "stage" past the deadline of the stage it waits in, "closure" past its closure deadline.
        if (o.json) out(JSON.stringify(rows.map((c) => ({ ...c, overdue: overdueFlags(c, now) })), null, 2) + '\n')
        else printTable(rows.map((c) => summary(c, now)), false)
        // Never cut short silently (stderr: --json stays parseable).
        if (total > rows.length) {
          err(`showing the oldest ${rows.length} of ${total} matching cases: narrow with --grid, --date, --state, --rule or --department, or raise --limit\n`)
        }
      },
    )
  cases
    .command('stats')
    .description('Closure rate (结案率) and on-time closure rate (按期结案率) of the cases filed in a period, per grid, street or department')
    .addOption(new Option('--by <group>', 'group by').choices(['grid', 'street', 'department']).default('grid'))
    .option('--from <YYYY-MM-DD>', 'first filing date (local, in the work calendar time zone); default: all')
    .option('--to <YYYY-MM-DD>', 'last filing date, inclusive; default: today')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json', 'csv']).default('table'))
    .action(async (o: { by: MetricsGroup; from?: string; to?: string; format: 'table' | 'json' | 'csv' }) => {
      for (const [flag, v] of [['--from', o.from], ['--to', o.to]] as const) if (v !== undefined) requireLocalDate(flag, v)
      const asOf = Date.now()
      const rows = await withStore(async (store) => {
        const { timeZone } = effectiveRulesConfig('calendar', await store.rulesConfig.get('calendar'))
        const from = o.from ? localToInstant(timeZone, o.from, 0) : 0
        const to = o.to ? localToInstant(timeZone, addDays(o.to, 1), 0) : asOf + 1
        if (to <= from) throw new Error(`--to ${o.to} is before --from ${o.from}`)
        return caseStats(store, { by: o.by, from, to, asOf })
      })
      const stats = rows.map((r) => ({ [o.by]: r.group, due: r.due, closed: r.closed, closedOnTime: r.closedOnTime, overdueOpen: r.overdueOpen, closureRate: r.closureRate, onTimeClosureRate: r.onTimeClosureRate }))
      if (o.format === 'json') out(JSON.stringify(stats, null, 2) + '\n')
      else if (o.format === 'csv') {
        const head = [o.by, 'due', 'closed', 'closed_on_time', 'overdue_open', 'closure_rate_pct', 'on_time_closure_rate_pct']
        out([head.join(','), ...stats.map((r) => Object.values(r).map(csvField).join(','))].join('\r\n') + '\r\n')
      } else printTable(stats, false)
    })
  cases
    .command('show')
    .description('Show a case with its evidence and audit trail')
    .argument('<id>', 'case id', num('the case id', { whole: true }))
    .option('--json', 'JSON output')
    .action(async (id: number, o: { json?: boolean }) => {
      const shown = await withStore(async (store) => {
        const c = await store.cases.get(id)
        return c ? { case: c, events: await store.cases.events(c.id) } : undefined
      })
      if (!shown) throw new Error(`case "${id}" does not exist`)
      if (o.json) {
        out(JSON.stringify(shown, null, 2) + '\n')
        return
      }
      const c = shown.case
      out(
        `case ${c.id}  ${c.state}  ${c.priority}\n${c.title}\n` +
          `rule ${c.rule}  grid ${c.gridId}  subject ${c.subject ?? '-'}  window ${c.windowKey ?? '-'}\n` +
          `category ${c.category}  department ${c.department ?? '-'}  stage due ${iso(c.stageDueAtMs) ?? '-'}  closure due ${iso(c.closureDueAtMs)}  overdue ${overdue(c, Date.now()) ?? 'no'}\n` +
          `evidence ${c.evidence.join(' ') || '-'}\ndetail ${JSON.stringify(c.detail)}\n${c.clearedAtMs ? `condition cleared ${iso(c.clearedAtMs)}\n` : ''}\naudit trail\n`,
      )
      printTable(shown.events.map((e) => ({ at: iso(e.atMs), from: e.from, to: e.to, rule: e.rule, actor: e.actor, role: e.role, note: e.note })), false)
    })
  cases
    .command('transition')
    .description(
      'Move cases through the workflow (checked against the transition table: roles, separation of duties, notes). ' +
        'Several ids: each case is moved on its own, and every refusal is named',
    )
    .argument('<id...>', 'case id(s)')
    .addOption(new Option('--to <state>', 'target state').choices([...CASE_STATES]).makeOptionMandatory())
    .requiredOption('--actor <id>', 'who acts (recorded in the audit trail)')
    .addOption(new Option('--role <role...>', 'role(s) the actor holds').choices([...ROLES]).makeOptionMandatory())
    .option('--note <text>', 'note (required by some transitions)')
    .action(async (ids: string[], o: { to: CaseState; actor: string; role: Role[]; note?: string }) => {
      const bad = ids.filter((id) => !/^[1-9]\d*$/.test(id))
      if (bad.length > 0) throw new Error(`case ids are whole numbers: ${bad.map((x) => `"${x}"`).join(', ')}`)
      const refused: string[] = []
      await withStore(async (store) => {
        const runner = createRunner({ store, log: pino({ level: 'silent' }) })
        for (const id of ids) {
          try {
            const moved = await runner.transitionCase(Number(id), o.to, { id: o.actor, roles: o.role }, o.note ?? null)
            out(`case ${moved.case.id}: ${moved.event?.from} → ${moved.case.state} (${moved.event?.rule}) by ${o.actor}\n`)
          } catch (err) {
            // The rule's own message, prefixed with its code and the rule that refused.
            const why = err instanceof RulesError ? `${err.code} [${err.rule}]: ${err.message}` : err instanceof Error ? err.message : String(err)
            if (ids.length === 1) throw new Error(why)
            refused.push(`case ${id}: ${why}`)
          }
        }
      })
      if (refused.length > 0) throw new Error(`${refused.length} of ${ids.length} case(s) not moved (the others were):\n  ${refused.join('\n  ')}`)
    })
}
