import t from 'tap'
import { effectiveRulesConfig, parseRulesConfig, RulesConfigError } from '../../src/rules/cases/config.ts'
import { DEFAULT_CATEGORIES } from '../../src/rules/cases/categories.ts'

const issues = (f: () => unknown) => {
  try {
    f()
  } catch (err) {
    if (err instanceof RulesConfigError) return err.issues.map((i) => i.path)
    throw err
  }
  return []
}

t.test('calendar documents: defaults filled, every bad field named', async (t) => {
  const cal = parseRulesConfig('calendar', { workdays: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat'], holidays: ['2025-10-01'] })
  t.equal(cal.timeZone, 'Asia/Shanghai')
  t.strictSame(cal.hours, [{ start: '09:00', end: '12:00' }, { start: '13:30', end: '18:00' }])
  const table: Array<[string, unknown, string[]]> = [
    ['end before start', { hours: [{ start: '10:00', end: '09:00' }] }, ['hours.0.end']],
    ['overlapping hours', { hours: [{ start: '09:00', end: '12:00' }, { start: '11:00', end: '14:00' }] }, ['hours.1.start']],
    ['no such date', { holidays: ['2025-02-30'] }, ['holidays.0']],
    ['bad weekday and zone', { workdays: ['monday'], timeZone: 'Mars/Base' }, ['timeZone', 'workdays.0']],
    ['not an object', 'weekdays', ['(calendar)']],
  ]
  for (const [name, doc, paths] of table) t.strictSame(issues(() => parseRulesConfig('calendar', doc)).sort(), paths, name)
})

t.test('category tables: built-in categories must stay, deadlines positive', async (t) => {
  const table = { ...DEFAULT_CATEGORIES, patrol_miss: { department: 'street-office', deadlines: { accept: 2, dispatch: 2, handle: 24, verify: 8, close: 2 } }, manhole: { department: 'roads' } }
  const cats = parseRulesConfig('categories', table)
  t.equal(cats['patrol_miss']?.department, 'street-office')
  t.strictSame(cats['manhole']?.deadlines, { accept: 1, dispatch: 1, handle: 16, verify: 4, close: 1 }, 'stage deadlines default')
  const { alarm: _a, low_battery: _b, ...without } = DEFAULT_CATEGORIES
  t.strictSame(issues(() => parseRulesConfig('categories', without)).sort(), ['alarm', 'low_battery'], 'missing built-ins named')
  t.strictSame(issues(() => parseRulesConfig('categories', { ...DEFAULT_CATEGORIES, alarm: { department: '', deadlines: { accept: 0 } } })).sort(), ['alarm.deadlines.accept', 'alarm.department'])
  t.strictSame(issues(() => parseRulesConfig('categories', [])), ['(categories)'])
  t.match(String(new RulesConfigError('calendar', [{ path: 'hours.0.end', message: 'm' }]).message), /invalid calendar:\n {2}hours\.0\.end: m/)
})

t.test('unset keys are the defaults the runner uses', async (t) => {
  t.strictSame(Object.keys(effectiveRulesConfig('categories', undefined)).sort(), Object.keys(DEFAULT_CATEGORIES).sort())
  t.equal(effectiveRulesConfig('calendar', null).workdays.length, 5)
})

t.test('device-rules documents: sections default, thresholds validated', async (t) => {
  const d = parseRulesConfig('device-rules', { offline: { offlineMinutes: 45 }, thresholds: [{ metric: 'water_level', above: 2 }] })
  t.equal(d.offline.offlineMinutes, 45)
  t.equal(d.battery.lowPercent, 20, 'unset sections default')
  t.strictSame(d.thresholds.map((x) => [x.metric, x.above, x.forMinutes]), [['water_level', 2, 10]])
  t.strictSame(issues(() => parseRulesConfig('device-rules', { thresholds: [{ metric: 'tilt' }], battery: { lowPercent: 30, recoverPercent: 25 } })).sort(), ['battery.recoverPercent', 'thresholds.0.above'])
  t.strictSame(effectiveRulesConfig('device-rules', undefined).thresholds, [], 'no thresholds by default')
})
