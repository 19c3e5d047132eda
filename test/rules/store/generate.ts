// Generated check-ins for the coverage contract test: the same rows go into the
// store (through uplinks.write, as the ingest writes them) and into the pure
// reference aggregate. Not a test file.
import type { CheckinRow } from '../../../src/rules/coverage/inputs.ts'
import { parsePlan, type PatrolPlan } from '../../../src/rules/plans/schema.ts'
import type { CheckInRecord } from '../../../src/store/types.ts'

export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface Generated {
  plans: PatrolPlan[]
  /** Checkpoints registered in the store (tag → checkpoint resolved by the ingest). */
  registered: Array<{ id: string; gridId: string; tagId: string }>
  devices: Array<{ id: string; gridId: string | null }>
  offsets: Array<{ deviceId: string; offsetMs: number }>
  records: CheckInRecord[]
  rows: CheckinRow[]
}

const MIN = 60_000

/**
 * Two grids with overlapping interests on one local day (Asia/Shanghai) and the
 * days around it: plan-only tags, registered tags, checkpoint ids used as tags,
 * unknown tags, foreign devices, rescans within minutes, fast travel, device
 * clocks ahead beyond plausibility, uploads later than allowed, known offsets,
 * empty and missing badges, second-exact ties.
 */
export function generate(seed: number, date: string, prefix = ''): Generated {
  const r = prng(seed)
  const p = (s: string) => `${prefix}${s}`
  const g1 = p('G1')
  const g2 = p('G2')
  const plans = [
    parsePlan({
      gridId: g1,
      checkpoints: [
        { id: p('A'), tagIds: [p('tag-a'), p('tag-a2')], lat: 31.23, lon: 121.47 },
        { id: p('B'), tagIds: [p('tag-b')], lat: 31.2305, lon: 121.4702 },
        { id: p('C'), tagIds: [], lat: 31.26, lon: 121.5 },
        { id: p('D'), tagIds: [p('tag-d')] },
      ],
      windows: { kind: 'every', every: '2h', start: '00:00' },
      visitsPerWindow: 2,
      maxGapMinutes: 90,
      clock: { maxAheadMinutes: 3, maxUploadDelayHours: 6 },
      antiFraud: { rescanMinutes: 4, maxSpeedKmh: 30, travelSlackMeters: 20, creditForeignDevices: seed % 2 === 0 },
    }),
    parsePlan({
      gridId: g2,
      checkpoints: [
        { id: p('E'), tagIds: [p('tag-e')], lat: 31.3, lon: 121.4 },
        { id: p('F'), tagIds: [p('tag-f')], lat: 31.301, lon: 121.401 },
      ],
      windows: { kind: 'shifts', shifts: [{ name: 'day', start: '08:00', end: '18:00' }, { name: 'night', start: '20:00', end: '06:00', visits: 3 }] },
      maxGapMinutes: 120,
    }),
  ]
  const registered = [
    { id: p('A'), gridId: g1, tagId: p('tag-a') },
    { id: p('B'), gridId: g1, tagId: p('tag-b') },
    { id: p('E'), gridId: g2, tagId: p('tag-e') },
  ]
  const devices = [
    { id: p('D1'), gridId: g1 },
    { id: p('D2'), gridId: g1 },
    { id: p('D3'), gridId: g2 },
    { id: p('D4'), gridId: null },
  ]
  const offsets = [
    { deviceId: p('D2'), offsetMs: 90_000 },
    { deviceId: p('D3'), offsetMs: -180_000 },
  ]
  const tags = [p('tag-a'), p('tag-a2'), p('tag-b'), p('C'), p('tag-d'), p('A'), p('tag-e'), p('tag-f'), p('E'), p('tag-x'), p('tag-y')]
  const badges = [p('P1'), p('P2'), null, '']
  const dayStart = Date.parse(`${date}T00:00:00+08:00`)
  const records: CheckInRecord[] = []
  const rows: CheckinRow[] = []
  const seq = new Map<string, number>()
  const reg = new Map(registered.map((x) => [x.tagId, x.id]))
  const push = (deviceId: string, tagId: string, deviceTime: number, receivedAt: number, badge: string | null) => {
    const s = (seq.get(deviceId) ?? 0) + 1
    seq.set(deviceId, s)
    const dev = devices.find((d) => d.id === deviceId)
    const checkpointId = reg.get(tagId) ?? null
    records.push({
      kind: 'checkin',
      deviceId,
      seq: s,
      deviceTimeMs: deviceTime,
      receivedAtMs: receivedAt,
      clockFuture: false,
      clockAncient: false,
      tagId,
      method: 'nfc',
      checkpointId,
      gridId: dev?.gridId ?? null,
      ...(badge !== null ? { badgeId: badge } : {}),
    })
    rows.push({ id: `${deviceId}:${s}`, deviceId, seq: s, tagId, checkpointId, deviceTime, receivedAt, badge, deviceGridId: dev?.gridId ?? null })
  }
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T
  for (let i = 0; i < 700; i++) {
    const dev = pick(devices).id
    const off = offsets.find((o) => o.deviceId === dev)?.offsetMs ?? 0
    // true time over three days, whole seconds (ties on purpose)
    const trueAt = dayStart - 26 * 60 * MIN + Math.floor(r() * 76 * 60) * MIN + (r() < 0.5 ? 0 : Math.floor(r() * 60) * 1000)
    const u = r()
    let deviceTime = trueAt + off
    let receivedAt = trueAt + 1000 + Math.floor(r() * 5000)
    if (u < 0.07) deviceTime += 60 * MIN // clock an hour ahead: implausible
    else if (u < 0.12) receivedAt += 7 * 60 * MIN // uploaded after maxUploadDelay
    else if (u < 0.3) receivedAt += Math.floor(r() * 5 * 60) * MIN // store-and-forward, within limits
    push(dev, pick(tags), deviceTime, receivedAt, pick(badges))
    if (r() < 0.15) push(dev, pick(tags), deviceTime + Math.floor(r() * 6) * MIN, receivedAt + 2 * MIN, pick(badges)) // rescan or quick hop
  }
  return { plans, registered, devices, offsets, records, rows }
}
