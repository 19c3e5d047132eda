// `gridpatrol rules config show|set calendar|categories|device-rules` on an embedded store:
// bad documents refused naming the field, and the stored calendar and
// categories are what the runner files the next cases with.
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { addWorkingHours, calendarSchema } from '../../src/rules/calendar.ts'
import { DEFAULT_CATEGORIES } from '../../src/rules/cases/categories.ts'
import { parsePlan } from '../../src/rules/plans/schema.ts'
import { createRunner } from '../../src/rules/runner.ts'
import { embeddedCli } from '../helpers/cli.ts'
import { silentLog } from '../helpers/store.ts'

t.test('rules config show/set, then cases filed with them', async (t) => {
  const { dir, gp, fails, store: cliStore } = await embeddedCli(t, 'gp-cli-rules-config')
  const file = async (name: string, doc: unknown) => {
    const p = join(dir, name)
    await writeFile(p, typeof doc === 'string' ? doc : JSON.stringify(doc))
    return p
  }

  const shown = await gp('rules', 'config', 'show', 'categories')
  t.match(shown.stderr, /categories: not set, these are the defaults/)
  t.strictSame(Object.keys(JSON.parse(shown.stdout) as object).sort(), Object.keys(DEFAULT_CATEGORIES).sort())

  const bad = await fails('rules', 'config', 'set', 'calendar', '--file', await file('bad.json', { hours: [{ start: '18:00', end: '09:00' }], workdays: ['funday'] }))
  t.equal(bad?.code, 1, 'a bad calendar is refused')
  t.match(bad?.stderr, /GP_RULES_CONFIG: .*bad\.json: invalid calendar:\n {2}workdays\.0: .*\n {2}hours\.0\.end: start must be before end/)
  t.match((await fails('rules', 'config', 'set', 'calendar', '--file', await file('broken.json', '{"hours": [')))?.stderr, /broken\.json is not JSON/)
  const { alarm: _alarm, ...noAlarm } = DEFAULT_CATEGORIES
  t.match((await fails('rules', 'config', 'set', 'categories', '--file', await file('cats-bad.json', noAlarm)))?.stderr, /alarm: missing: the rules raise "alarm" cases/)

  const calendar = { workdays: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], hours: [{ start: '08:00', end: '20:00' }], holidays: ['2030-01-01'] }
  t.match((await gp('rules', 'config', 'set', 'calendar', '--file', await file('cal.json', calendar))).stdout, /calendar stored \(calendar in Asia\/Shanghai\)/)
  const categories = { ...DEFAULT_CATEGORIES, patrol_miss: { department: 'street-office', deadlines: { accept: 3, dispatch: 2, handle: 24, verify: 8, close: 2 } } }
  t.match((await gp('rules', 'config', 'set', 'categories', '--file', await file('cats.json', categories))).stdout, /categories stored \(6 categories\)/)
  t.match((await fails('rules', 'config', 'set', 'device-rules', '--file', await file('dev-bad.json', { thresholds: [{ metric: 'water_level', above: 2, forMinutes: -1 }] })))?.stderr, /thresholds\.0\.forMinutes/)
  t.match((await gp('rules', 'config', 'set', 'device-rules', '--file', await file('dev.json', { offline: { offlineMinutes: 45 }, thresholds: [{ metric: 'water_level', above: 2 }] }))).stdout, /device-rules stored \(offline after 45 min, 1 sensor thresholds\)/)

  // A coverage report of a past day raises patrol_miss cases, filed with the stored table and calendar.
  const store = await cliStore()
  t.strictSame(await store.rulesConfig.get('calendar'), calendarSchema.parse(calendar), 'the calendar stored with its defaults filled in')
  t.equal(((await store.rulesConfig.get('device-rules')) as { offline: { offlineMinutes: number } }).offline.offlineMinutes, 45)
  await store.grids.create({ id: 'CFG', level: 'district', name: 'CFG' })
  await store.plans.put({ gridId: 'CFG', effectiveFrom: null, plan: parsePlan({ gridId: 'CFG', checkpoints: [{ id: 'CFG-A' }], windows: { kind: 'every', every: '24h' } }) })
  const now = Date.parse('2024-06-08T01:00:00Z') // a Saturday, 09:00 in Shanghai: a working day only on the stored calendar
  await createRunner({ store, log: silentLog, now: () => now }).evaluateDay('CFG', '2024-06-01')
  const [c] = await store.cases.list({ rule: 'patrol_miss' })
  if (!c) return t.fail('a patrol_miss case was raised')
  t.equal(c.department, 'street-office', 'department from the stored categories')
  t.equal(c.stageDueAtMs, addWorkingHours(calendarSchema.parse(calendar), now, 3), 'accept deadline: 3 working hours on the stored calendar')
})
