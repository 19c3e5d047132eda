import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { ZodError } from 'zod'
import { parsePlan } from '../../rules/plans/schema.ts'
import { addDays, instantToLocal } from '../../rules/tz.ts'
import { printTable, withStore } from '../with-store.ts'
import { cliPath, io, out } from '../io.ts'

/** Every issue with its field path, e.g. `windows.every: must divide …`. */
function describeIssues(err: ZodError): string {
  return err.issues.map((i) => `  ${i.path.join('.') || '(plan)'}: ${i.message}`).join('\n')
}

export function registerPlan(program: Command): void {
  const plan = program.command('plan').description('Patrol plans: checkpoints, daily windows, visits, gaps, time zone, active days')
  plan
    .command('set')
    .description('Validate a plan file and store it as the next version of the grid plan')
    .requiredOption('--grid <gridId>', 'grid')
    .requiredOption('--file <plan.json>', 'plan JSON (see src/rules/plans/schema.ts; gridId may be omitted)')
    .option(
      '--effective-from <YYYY-MM-DD>',
      "first local date this version applies (overrides the file; default: the file's, else, in the plan's time zone, today for a grid's first plan and tomorrow for a change)",
    )
    .option('--retroactive', 'no first date: the version applies to every date no dated version covers, past days included when they are evaluated again')
    .action(async (o: { grid: string; file: string; effectiveFrom?: string; retroactive?: boolean }) => {
      const raw = JSON.parse(await readFile(cliPath(o.file), 'utf8')) as Record<string, unknown>
      if (raw['gridId'] !== undefined && raw['gridId'] !== o.grid) throw new Error(`the file is a plan for grid "${String(raw['gridId'])}", not "${o.grid}"`)
      if (o.retroactive && (o.effectiveFrom || raw['effectiveFrom'] !== undefined)) throw new Error('--retroactive and an effective date (--effective-from, or effectiveFrom in the file) exclude each other')
      let parsed
      try {
        parsed = parsePlan({ ...raw, gridId: o.grid, ...(o.effectiveFrom ? { effectiveFrom: o.effectiveFrom } : {}) })
      } catch (err) {
        if (err instanceof ZodError) throw new Error(`invalid plan ${o.file}:\n${describeIssues(err)}`)
        throw err
      }
      // Undated, a version would also govern every past day evaluated again (the scheduler's catch-up, late
      // uploads), judged by checkpoints and windows set after the fact, raising or resolving cases for them.
      // So: a grid's first plan applies from now (today; windows that ended before it are not judged), and a
      // change from tomorrow (today's windows, some judged already, keep the version they had).
      const dated = o.retroactive || parsed.effectiveFrom !== undefined
      const now = Date.now()
      const today = instantToLocal(parsed.timeZone, now).date
      const { row, first } = await withStore(async (store) => {
        if (!(await store.grids.get(o.grid))) throw new Error(`grid "${o.grid}" does not exist (gridpatrol grid add)`)
        const first = (await store.plans.list(o.grid)).length === 0
        const plan = dated ? parsed : first ? { ...parsed, effectiveFrom: today, effectiveAt: parsed.effectiveAt ?? new Date(now).toISOString() } : { ...parsed, effectiveFrom: addDays(today, 1) }
        return { row: await store.plans.put({ gridId: o.grid, effectiveFrom: plan.effectiveFrom ?? null, plan, createdBy: io().env['USER'] ?? null }), first }
      })
      const at = (row.plan as { effectiveAt?: string }).effectiveAt
      const from = row.effectiveFrom
      out(
        `plan for grid ${row.gridId} stored as version ${row.version}` +
          (from ? `, effective from ${from}` : ', effective on every date (retroactive)') +
          (at ? ` (windows ended before ${at} are not judged)` : '') +
          (!dated && !first ? ` (tomorrow: today keeps the version it had; --effective-from ${today} applies it today, re-judging today's windows)` : '') +
          '\n',
      )
    })
  plan
    .command('show')
    .description('Show the plan versions of a grid (the latest in full)')
    .requiredOption('--grid <gridId>', 'grid')
    .option('--json', 'JSON output (every version)')
    .action(async (o: { grid: string; json?: boolean }) => {
      const rows = await withStore((store) => store.plans.list(o.grid))
      if (rows.length === 0) throw new Error(`grid "${o.grid}" has no plan`)
      if (o.json) {
        out(JSON.stringify(rows, null, 2) + '\n')
        return
      }
      printTable(rows.map((r) => ({ version: r.version, effectiveFrom: r.effectiveFrom, createdBy: r.createdBy, createdAt: r.createdAt })), false)
      out(`\nversion ${rows.at(-1)?.version}:\n${JSON.stringify(rows.at(-1)?.plan, null, 2)}\n`)
    })
}
