import t from 'tap'
import { continuesPreviousDay, isActiveDay, patrolPeriods, windowsForDay } from '../../../src/rules/coverage/windows.ts'
import { iso, plan } from '../fixtures.ts'

const show = (ws: ReturnType<typeof windowsForDay>) => ws.map((w) => `${w.name} ${iso(w.start)}→${iso(w.end)} x${w.visitsRequired}`)

t.test('interval windows per zone and DST day', async (t) => {
  const cases: Array<{ name: string; tz: string; date: string; every: string; start?: string; end?: string; want: string[] }> = [
    {
      name: 'Shanghai 6h from midnight',
      tz: 'Asia/Shanghai',
      date: '2024-06-01',
      every: '6h',
      want: [
        '00:00-06:00 2024-05-31T16:00:00.000Z→2024-05-31T22:00:00.000Z x1',
        '06:00-12:00 2024-05-31T22:00:00.000Z→2024-06-01T04:00:00.000Z x1',
        '12:00-18:00 2024-06-01T04:00:00.000Z→2024-06-01T10:00:00.000Z x1',
        '18:00-00:00 2024-06-01T10:00:00.000Z→2024-06-01T16:00:00.000Z x1',
      ],
    },
    {
      name: 'Shanghai 8h from 22:00 crosses midnight',
      tz: 'Asia/Shanghai',
      date: '2024-06-01',
      every: '8h',
      start: '22:00',
      want: [
        '22:00-06:00 2024-06-01T14:00:00.000Z→2024-06-01T22:00:00.000Z x1',
        '06:00-14:00 2024-06-01T22:00:00.000Z→2024-06-02T06:00:00.000Z x1',
        '14:00-22:00 2024-06-02T06:00:00.000Z→2024-06-02T14:00:00.000Z x1',
      ],
    },
    {
      name: 'Shanghai 2h from 20:00 to 02:00',
      tz: 'Asia/Shanghai',
      date: '2024-06-01',
      every: '2h',
      start: '20:00',
      end: '02:00',
      want: [
        '20:00-22:00 2024-06-01T12:00:00.000Z→2024-06-01T14:00:00.000Z x1',
        '22:00-00:00 2024-06-01T14:00:00.000Z→2024-06-01T16:00:00.000Z x1',
        '00:00-02:00 2024-06-01T16:00:00.000Z→2024-06-01T18:00:00.000Z x1',
      ],
    },
    {
      name: 'Berlin spring forward: 02:00-04:00 is one real hour',
      tz: 'Europe/Berlin',
      date: '2024-03-31',
      every: '2h',
      start: '00:00',
      end: '06:00',
      want: [
        '00:00-02:00 2024-03-30T23:00:00.000Z→2024-03-31T01:00:00.000Z x1',
        '02:00-04:00 2024-03-31T01:00:00.000Z→2024-03-31T02:00:00.000Z x1',
        '04:00-06:00 2024-03-31T02:00:00.000Z→2024-03-31T04:00:00.000Z x1',
      ],
    },
    {
      name: 'Berlin fall back: 02:00-04:00 is three real hours',
      tz: 'Europe/Berlin',
      date: '2024-10-27',
      every: '2h',
      start: '00:00',
      end: '06:00',
      want: [
        '00:00-02:00 2024-10-26T22:00:00.000Z→2024-10-27T00:00:00.000Z x1',
        '02:00-04:00 2024-10-27T00:00:00.000Z→2024-10-27T03:00:00.000Z x1',
        '04:00-06:00 2024-10-27T03:00:00.000Z→2024-10-27T05:00:00.000Z x1',
      ],
    },
    {
      name: 'New York spring forward, 12h windows',
      tz: 'America/New_York',
      date: '2024-03-10',
      every: '12h',
      want: [
        '00:00-12:00 2024-03-10T05:00:00.000Z→2024-03-10T16:00:00.000Z x1',
        '12:00-00:00 2024-03-10T16:00:00.000Z→2024-03-11T04:00:00.000Z x1',
      ],
    },
  ]
  for (const c of cases) {
    const p = plan({ timeZone: c.tz, windows: { kind: 'every', every: c.every, start: c.start ?? '00:00', ...(c.end ? { end: c.end } : {}) } })
    t.same(show(windowsForDay(p, c.date)), c.want, c.name)
  }
})

t.test('a full day of windows tiles exactly the local day (23 h / 25 h on DST days)', async (t) => {
  // A window lying wholly inside the spring-forward gap (02:00-03:00) does not exist.
  for (const [tz, date, hours, count] of [
    ['Europe/Berlin', '2024-03-31', 23, 23],
    ['Europe/Berlin', '2024-10-27', 25, 24],
    ['America/New_York', '2024-11-03', 25, 24],
    ['Asia/Shanghai', '2024-03-31', 24, 24],
  ] as const) {
    const ws = windowsForDay(plan({ timeZone: tz, windows: { kind: 'every', every: '1h' } }), date)
    t.equal(ws.length, count, `${tz} ${date}: ${count} wall-clock windows`)
    for (let i = 1; i < ws.length; i++) t.equal(ws[i]?.start, ws[i - 1]?.end, 'no holes or overlaps')
    const first = ws[0]
    const last = ws[ws.length - 1]
    t.equal(first && last ? (last.end - first.start) / 3_600_000 : 0, hours, `${tz} ${date} lasts ${hours} h`)
    t.equal(ws.filter((w) => w.end === w.start).length, 0)
  }
})

t.test('named shifts, crossing midnight, per-shift visits', async (t) => {
  const p = plan({
    windows: {
      kind: 'shifts',
      shifts: [
        { name: 'night', start: '22:00', end: '06:00', visits: 2 },
        { name: 'morning', start: '08:00', end: '12:00' },
      ],
    },
    visitsPerWindow: 1,
  })
  t.same(show(windowsForDay(p, '2024-06-01')), [
    'morning 2024-06-01T00:00:00.000Z→2024-06-01T04:00:00.000Z x1',
    'night 2024-06-01T14:00:00.000Z→2024-06-01T22:00:00.000Z x2',
  ])
  t.same(windowsForDay(p, '2024-06-01').map((w) => w.key), ['2024-06-01/morning', '2024-06-01/night'])
})

t.test('active days: weekdays, extra dates, exceptions, effectiveFrom', async (t) => {
  const p = plan({ activeDays: { weekdays: ['mon', 'tue', 'wed', 'thu', 'fri'], dates: ['2024-06-08'], exceptDates: ['2024-06-10'] }, effectiveFrom: '2024-06-01' })
  const cases: Array<[string, boolean]> = [
    ['2024-05-31', false], // before effectiveFrom (a Friday)
    ['2024-06-03', true], // Monday
    ['2024-06-08', true], // Saturday, listed
    ['2024-06-09', false], // Sunday
    ['2024-06-10', false], // Monday, excepted
  ]
  for (const [date, want] of cases) {
    t.equal(isActiveDay(p, date), want, date)
    t.equal(windowsForDay(p, date).length > 0, want)
  }
})

t.test('effectiveAt: windows that ended at or before it are not judged; one in progress is', async (t) => {
  // Shanghai, 6h windows; the plan put in force at 12:00 local (04:00Z) on 2024-06-01.
  const p = plan({ windows: { kind: 'every', every: '6h' }, effectiveFrom: '2024-06-01', effectiveAt: '2024-06-01T12:00:00+08:00' })
  t.strictSame(windowsForDay(p, '2024-06-01').map((w) => w.name), ['12:00-18:00', '18:00-00:00'], '00–06 and 06–12 ended before it')
  t.strictSame(patrolPeriods(windowsForDay(p, '2024-06-01')).map((x) => [iso(x.start), iso(x.end)]), [['2024-06-01T04:00:00.000Z', '2024-06-01T16:00:00.000Z']], 'gaps measured from 12:00')
  const q = plan({ windows: { kind: 'every', every: '6h' }, effectiveAt: '2024-06-01T13:30:00+08:00' })
  t.strictSame(windowsForDay(q, '2024-06-01').map((w) => w.name), ['12:00-18:00', '18:00-00:00'], 'the window in progress is judged')
  t.equal(windowsForDay(q, '2024-06-02').length, 4, 'later days: every window')
  t.throws(() => plan({ effectiveAt: '2024-06-01 12:00' }), /effectiveAt/, 'not an ISO 8601 instant: refused naming the field')
})

t.test('patrol periods and continuation from the previous day', async (t) => {
  const shifts = plan({ windows: { kind: 'shifts', shifts: [{ name: 'a', start: '08:00', end: '12:00' }, { name: 'b', start: '11:00', end: '13:00' }, { name: 'c', start: '14:00', end: '18:00' }] } })
  const periods = patrolPeriods(windowsForDay(shifts, '2024-06-01')).map((p) => `${iso(p.start)}→${iso(p.end)}`)
  t.same(periods, ['2024-06-01T00:00:00.000Z→2024-06-01T05:00:00.000Z', '2024-06-01T06:00:00.000Z→2024-06-01T10:00:00.000Z'])
  const d = '2024-06-02'
  t.notOk(continuesPreviousDay(shifts, d, windowsForDay(shifts, d)[0]?.start ?? 0), 'shift plan does not continue')
  const allDay = plan()
  t.ok(continuesPreviousDay(allDay, d, windowsForDay(allDay, d)[0]?.start ?? 0), '24 h plan continues')
  const weekdays = plan({ activeDays: { weekdays: ['mon'] } })
  t.notOk(continuesPreviousDay(weekdays, '2024-06-03', windowsForDay(weekdays, '2024-06-03')[0]?.start ?? 0), 'Sunday inactive')
})
