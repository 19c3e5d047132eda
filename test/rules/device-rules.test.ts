import t from 'tap'
import { alarmConfigSchema, evaluateAlarms, type AlarmRow } from '../../src/rules/alarm.ts'
import { batteryConfigSchema, evaluateBattery, type BatteryReading } from '../../src/rules/battery.ts'
import { evaluateOffline, offlineConfigSchema } from '../../src/rules/offline.ts'
import { evaluateThreshold, thresholdConfigSchema, type SensorReading } from '../../src/rules/threshold.ts'
import { at } from './fixtures.ts'

const T0 = at('2024-06-01T00:00:00Z')
const min = (m: number) => T0 + m * 60_000
const brief = (ps: ReturnType<typeof evaluateOffline>) => ps.map((p) => `${p.key} ${p.priority} [${p.evidence.join(',')}]`)

t.test('config schemas have defaults and name bad fields', async (t) => {
  t.same(offlineConfigSchema.parse(undefined), { offlineMinutes: 30, category: 'device_offline' })
  t.same(batteryConfigSchema.parse({}), { lowPercent: 20, recoverPercent: 25, criticalPercent: 5, category: 'low_battery' })
  t.same(alarmConfigSchema.parse(undefined).kinds, ['sos', 'tamper', 'man_down'])
  const cases: Array<[string, { safeParse: (x: unknown) => { success: boolean; error?: { issues: Array<{ path: PropertyKey[] }> } } }, unknown, string]> = [
    ['offline minutes', offlineConfigSchema, { offlineMinutes: 0 }, 'offlineMinutes'],
    ['battery hysteresis', batteryConfigSchema, { lowPercent: 30, recoverPercent: 25 }, 'recoverPercent'],
    ['alarm kinds', alarmConfigSchema, { kinds: [] }, 'kinds'],
    ['threshold without bound', thresholdConfigSchema, { metric: 'x' }, 'above'],
    ['threshold metric', thresholdConfigSchema, { above: 1 }, 'metric'],
  ]
  for (const [name, schema, input, path] of cases) {
    const r = schema.safeParse(input)
    t.notOk(r.success, name)
    t.ok(r.error?.issues.some((i) => i.path.join('.') === path), `${name} names ${path}`)
  }
})

t.test('offline: silent longer than N minutes, one case per spell', async (t) => {
  const cfg = offlineConfigSchema.parse({ offlineMinutes: 30 })
  const devices = [
    { deviceId: 'D1', gridId: 'G1', lastSeenAt: min(0), registeredAt: min(-1000) },
    { deviceId: 'D2', gridId: 'G1', lastSeenAt: min(20), registeredAt: min(-1000) },
    { deviceId: 'D3', gridId: 'G2', lastSeenAt: null, registeredAt: min(-60) },
  ]
  const cases: Array<[number, string[]]> = [
    [30, []],
    [31, ['device_offline|G1|D1|2024-06-01T00%3A00%3A00.000Z normal []']],
    [
      51,
      [
        'device_offline|G1|D1|2024-06-01T00%3A00%3A00.000Z normal []',
        'device_offline|G1|D2|2024-06-01T00%3A20%3A00.000Z normal []',
      ],
    ],
  ]
  for (const [now, want] of cases) t.same(brief(evaluateOffline(cfg, devices.slice(0, 2), min(now))), want, `at +${now} min`)
  const never = evaluateOffline(cfg, [devices[2]!], min(0))
  t.same([never[0]?.detail.neverSeen, never[0]?.window], [true, '2024-05-31T23:00:00.000Z'])
  t.equal(never[0]?.detectedAt, min(-30))
})

t.test('battery: spell with hysteresis, urgent when critical', async (t) => {
  const cfg = batteryConfigSchema.parse({})
  const r = (id: string, m: number, percent: number, deviceId = 'D1'): BatteryReading => ({ id, deviceId, gridId: 'G1', percent, at: min(m) })
  const cases: Array<[string, BatteryReading[], string[]]> = [
    ['healthy', [r('a', 0, 80), r('b', 10, 50)], []],
    ['goes low', [r('a', 0, 30), r('b', 10, 20), r('c', 20, 18)], ['low_battery|G1|D1|2024-06-01T00%3A10%3A00.000Z normal [b,c]']],
    ['dips to 22 without recovering', [r('a', 0, 19), r('b', 10, 22), r('c', 20, 19)], ['low_battery|G1|D1|2024-06-01T00%3A00%3A00.000Z normal [a,c]']],
    ['recovers then a new spell', [r('a', 0, 19), r('b', 10, 90), r('c', 20, 4)], ['low_battery|G1|D1|2024-06-01T00%3A20%3A00.000Z urgent [c]']],
    ['recovered', [r('a', 0, 10), r('b', 10, 26)], []],
    ['future reading ignored', [r('a', 0, 50), r('b', 999, 1)], []],
  ]
  for (const [name, rows, want] of cases) t.same(brief(evaluateBattery(cfg, [...rows].reverse(), min(100))), want, name)
})

t.test('alarms: urgent, merged in bursts per device and kind, unknown kinds ignored', async (t) => {
  const cfg = alarmConfigSchema.parse({ mergeSeconds: 300 })
  const a = (id: string, m: number, kind: string, deviceId = 'D1'): AlarmRow => ({ id, deviceId, gridId: 'G1', kind, at: min(m) })
  const rows = [a('s1', 0, 'sos'), a('s2', 2, 'sos'), a('s3', 6, 'sos'), a('s4', 20, 'sos'), a('t1', 1, 'tamper'), a('x', 1, 'low_signal'), a('m1', 3, 'man_down', 'D2')]
  t.same(brief(evaluateAlarms(cfg, rows, min(60))), [
    'alarm|G1|D1|sos%2F2024-06-01T00%3A00%3A00.000Z urgent [s1,s2,s3]',
    'alarm|G1|D1|sos%2F2024-06-01T00%3A20%3A00.000Z urgent [s4]',
    'alarm|G1|D1|tamper%2F2024-06-01T00%3A01%3A00.000Z urgent [t1]',
    'alarm|G1|D2|man_down%2F2024-06-01T00%3A03%3A00.000Z urgent [m1]',
  ])
  t.same(evaluateAlarms(cfg, rows, min(60)), evaluateAlarms(cfg, [...rows].reverse(), min(60)), 'order-independent')
})

t.test('threshold held for a duration', async (t) => {
  const cfg = thresholdConfigSchema.parse({ metric: 'water_cm', above: 50, forMinutes: 10, maxSampleGapMinutes: 15 })
  const s = (id: string, m: number, value: number, metric = 'water_cm'): SensorReading => ({ id, sensorId: 'S1', gridId: 'G1', metric, value, at: min(m) })
  const cases: Array<[string, SensorReading[], string[]]> = [
    ['brief spike', [s('a', 0, 60), s('b', 5, 70), s('c', 8, 40)], []],
    ['held 10 min', [s('a', 0, 60), s('b', 5, 70), s('c', 10, 55)], ['sensor_threshold|G1|S1|water_cm%2F2024-06-01T00%3A00%3A00.000Z normal [a,b,c]']],
    ['sample gap breaks the run', [s('a', 0, 60), s('b', 20, 70), s('c', 25, 55)], []],
    ['other metric ignored', [s('a', 0, 60, 'temp'), s('b', 20, 70, 'temp')], []],
    [
      'two runs',
      [s('a', 0, 60), s('b', 10, 61), s('c', 12, 10), s('d', 20, 80), s('e', 35, 51)],
      ['sensor_threshold|G1|S1|water_cm%2F2024-06-01T00%3A00%3A00.000Z normal [a,b]', 'sensor_threshold|G1|S1|water_cm%2F2024-06-01T00%3A20%3A00.000Z normal [d,e]'],
    ],
  ]
  for (const [name, rows, want] of cases) t.same(brief(evaluateThreshold(cfg, rows, min(100))), want, name)
  const below = thresholdConfigSchema.parse({ metric: 'voltage', below: 3.3, forMinutes: 0, priority: 'urgent' })
  const got = evaluateThreshold(below, [{ id: 'v', sensorId: 'S2', gridId: 'G1', metric: 'voltage', value: 3.1, at: min(0) }], min(1))
  t.same([got[0]?.priority, got[0]?.detail.peak, got[0]?.detail.ongoing], ['urgent', 3.1, true])
})
