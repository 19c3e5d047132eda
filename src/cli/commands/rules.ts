import { readFile } from 'node:fs/promises'
import { Argument, type Command } from 'commander'
import { effectiveRulesConfig, parseRulesConfig, RULES_CONFIG_KEYS, RulesConfigError, type RulesConfigKey } from '../../rules/cases/config.ts'
import { withStore } from '../with-store.ts'
import { cliPath, out, err } from '../io.ts'

const keyArgument = () =>
  new Argument(
    '<key>',
    'calendar (working days, hours, holidays, make-up workdays), categories (category → department, priority, stage deadlines) or device-rules (offline minutes, battery levels, alarm kinds, sensor thresholds)',
  ).choices([
    ...RULES_CONFIG_KEYS,
  ])

/** Reads and parses a JSON file, naming the file in every failure. */
async function readJson(file: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(cliPath(file), 'utf8')
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`)
  }
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new Error(`${file} is not JSON: ${(err as Error).message}`)
  }
}

export function registerRules(program: Command): void {
  const rules = program.command('rules').description('Rules configuration: the work calendar, the case categories and the device rules')
  const config = rules.command('config').description('Show or set the work calendar, the case categories and the device rules, read by the rules engine on every pass')
  config
    .command('show')
    .description('Print the configuration in force as JSON (the defaults when never set); edit it and give it back to `set`')
    .addArgument(keyArgument())
    .action(async (key: RulesConfigKey) => {
      const stored = await withStore((store) => store.rulesConfig.get(key))
      if (stored === undefined || stored === null) err(`${key}: not set, these are the defaults\n`)
      out(JSON.stringify(effectiveRulesConfig(key, stored), null, 2) + '\n')
    })
  config
    .command('set')
    .description('Validate a JSON file and store it (replaces the whole document; applies from the rules engine\'s next pass)')
    .addArgument(keyArgument())
    .requiredOption('--file <file.json>', 'the document (start from `gridpatrol rules config show <key>`)')
    .action(async (key: RulesConfigKey, o: { file: string }) => {
      const raw = await readJson(o.file)
      let value
      try {
        value = parseRulesConfig(key, raw)
      } catch (err) {
        if (err instanceof RulesConfigError) throw new Error(`${err.code}: ${o.file}: ${err.message}`)
        throw err
      }
      await withStore((store) => store.rulesConfig.set(key, value))
      const what =
        key === 'categories'
          ? `${Object.keys(value).length} categories`
          : key === 'calendar'
            ? `calendar in ${(value as { timeZone: string }).timeZone}`
            : `offline after ${(value as { offline: { offlineMinutes: number } }).offline.offlineMinutes} min, ${(value as { thresholds: unknown[] }).thresholds.length} sensor thresholds`
      out(`${key} stored (${what})\n`)
    })
}
