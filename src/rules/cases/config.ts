import { z, ZodError } from 'zod'
import { alarmConfigSchema } from '../alarm.ts'
import { batteryConfigSchema } from '../battery.ts'
import { calendarSchema, type WorkCalendar } from '../calendar.ts'
import { RulesError } from '../errors.ts'
import { offlineConfigSchema } from '../offline.ts'
import { thresholdConfigSchema } from '../threshold.ts'
import { categoriesSchema, DEFAULT_CATEGORIES, type CategoryTable } from './categories.ts'

/**
 * The device rules' settings: when a device counts as offline, the battery
 * levels, the alarm kinds that raise urgent cases, and the sensor thresholds
 * (none by default: which metric of which sensor matters is the city's call).
 */
export const deviceRulesSchema = z.object({
  offline: offlineConfigSchema,
  battery: batteryConfigSchema,
  alarm: alarmConfigSchema,
  thresholds: z.array(thresholdConfigSchema).default([]).describe('Sensor threshold rules, one per metric'),
})
export type DeviceRulesConfig = z.output<typeof deviceRulesSchema>

/**
 * The rules' stored configuration (store.rulesConfig): the work calendar case
 * deadlines are counted on, the case categories (department, priority, stage
 * deadlines) and the device rules' settings. Unset keys mean the defaults; the
 * runner reads them on every pass, so a change applies from the next pass.
 */
export const RULES_CONFIG_KEYS = ['calendar', 'categories', 'device-rules'] as const
export type RulesConfigKey = (typeof RULES_CONFIG_KEYS)[number]

export interface RulesConfigValues {
  calendar: WorkCalendar
  categories: CategoryTable
  'device-rules': DeviceRulesConfig
}

/** A configuration document that does not validate; `issues` name each field. */
export class RulesConfigError extends RulesError {
  constructor(
    key: string,
    readonly issues: ReadonlyArray<{ path: string; message: string }>,
  ) {
    super('GP_RULES_CONFIG', key, `invalid ${key}:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`)
    this.name = 'RulesConfigError'
  }
}

export function isRulesConfigKey(key: string): key is RulesConfigKey {
  return (RULES_CONFIG_KEYS as readonly string[]).includes(key)
}

const schemas = { calendar: calendarSchema, categories: categoriesSchema, 'device-rules': deviceRulesSchema } as const
const schemaOf = <K extends RulesConfigKey>(key: K) => schemas[key] as unknown as z.ZodType<RulesConfigValues[K]>

/**
 * Validates a document for `key` and returns it with defaults filled in (what
 * is stored). Categories must keep every built-in category the rules raise
 * cases under, else those cases could not be filed.
 */
export function parseRulesConfig<K extends RulesConfigKey>(key: K, raw: unknown): RulesConfigValues[K] {
  if (key === 'categories' && (raw === null || typeof raw !== 'object' || Array.isArray(raw)))
    throw new RulesConfigError(key, [{ path: '(categories)', message: 'must be an object of category name → { department, deadlines, ... }' }])
  let value: RulesConfigValues[K]
  try {
    value = schemaOf(key).parse(raw)
  } catch (err) {
    if (err instanceof ZodError) throw new RulesConfigError(key, err.issues.map((i) => ({ path: i.path.map(String).join('.') || `(${key})`, message: i.message })))
    throw err
  }
  if (key === 'categories') {
    const missing = Object.keys(DEFAULT_CATEGORIES).filter((name) => !(name in (value as CategoryTable)))
    if (missing.length > 0) throw new RulesConfigError(key, missing.map((name) => ({ path: name, message: `missing: the rules raise "${name}" cases, so the category must stay (change its department or deadlines instead)` })))
  }
  return value
}

/** What the runner uses for `key`: the stored document, or the defaults when unset. */
export function effectiveRulesConfig<K extends RulesConfigKey>(key: K, stored: unknown): RulesConfigValues[K] {
  if (stored === undefined || stored === null) return schemaOf(key).parse(key === 'categories' ? undefined : {})
  return parseRulesConfig(key, stored)
}
