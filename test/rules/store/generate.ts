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
  /** Checkpoints registered in the store (tag → checkpoint resolved by the ingest); H is in no plan. */
  registered: Array<{ id: string; gridId: string; tagId: string }>
  devices: Array<{ id: string; gridId: string | null }>
  /**
   * Clock offsets as loadGenerated writes them: one time sync each, acknowledged with
   * `seq` (distinct from the device's check-in seqs) and received at `measuredAt`.
   */
  offsets: Array<{ deviceId: string; offsetMs: number; seq: number; measuredAt: number }>
  records: CheckInRecord[]
  rows: CheckinRow[]
}

const MIN = 60_000
/** When the fixed offsets (D2, D3) were measured, by acks of seq SYNC_SEQ. */
export const T0 = Date.parse('2024-05-01T00:00:00Z')
export const SYNC_SEQ = 1_000_000

/**
 * Two grids with overlapping interests on one local day (Asia/Shanghai) and the
 * days around it: plan-only tags, registered tags, checkpoint ids used as tags,
 * unknown tags, foreign devices, rescans within minutes, fast travel, device
 * clocks ahead beyond plausibility, uploads later than allowed, known offsets,
 * empty and missing badges, second-exact ties. D5 (G1) corrects its clock after a
 * sync on the day (d5Rows): its earlier rows keep the offset measured then.
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
    { id: p('H'), gridId: g2, tagId: p('tag-h') },
  ]
  const devices = [
    { id: p('D1'), gridId: g1 },
    { id: p('D2'), gridId: g1 },
    { id: p('D3'), gridId: g2 },
    { id: p('D4'), gridId: null },
  ]
  const offsets: Generated['offsets'] = [
    { deviceId: p('D2'), offsetMs: 90_000, seq: SYNC_SEQ, measuredAt: T0 },
    { deviceId: p('D3'), offsetMs: -180_000, seq: SYNC_SEQ, measuredAt: T0 },
  ]
  const tags = [p('tag-a'), p('tag-a2'), p('tag-b'), p('C'), p('tag-d'), p('A'), p('tag-e'), p('tag-f'), p('E'), p('tag-x'), p('tag-y')]
  const badges = [p('P1'), p('P2'), null, '']
  const dayStart = Date.parse(`${date}T00:00:00+08:00`)
  const records: CheckInRecord[] = []
  const rows: CheckinRow[] = []
  const seq = new Map<string, number>()
  const reg = new Map(registered.map((x) => [x.tagId, x.id]))
  const gridOf = new Map(registered.map((x) => [x.id, x.gridId]))
  const push: Push = (deviceId, tagId, deviceTime, receivedAt, badge, gps, resolvedTo) => {
    const s = (seq.get(deviceId) ?? 0) + 1
    seq.set(deviceId, s)
    const dev = devices.find((d) => d.id === deviceId)
    const checkpointId = gps ? gps.checkpointId : (resolvedTo ?? reg.get(tagId) ?? null)
    // what the store's registry says of the checkpoint's grid when it evaluates (unplanned_checkpoint)
    const checkpointGridId = checkpointId === null ? null : (gridOf.get(checkpointId) ?? null)
    const fix = gps?.fix ? { lat: gps.fix.lat, lon: gps.fix.lon } : {}
    records.push({
      kind: 'checkin',
      deviceId,
      seq: s,
      deviceTimeMs: deviceTime,
      receivedAtMs: receivedAt,
      clockFuture: false,
      clockAncient: false,
      tagId,
      method: gps ? 'gps' : 'nfc',
      checkpointId,
      gridId: dev?.gridId ?? null,
      ...fix,
      ...(badge !== null ? { badgeId: badge } : {}),
    })
    rows.push({ id: `${deviceId}:${s}`, deviceId, seq: s, tagId, checkpointId, checkpointGridId, deviceTime, receivedAt, badge, deviceGridId: dev?.gridId ?? null, ...fix })
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
  // D5 after the others, from a prng of its own: their rows stay as they were.
  devices.push({ id: p('D5'), gridId: g1 })
  d5Rows(seed, dayStart, p, offsets, push, seq)
  devices.push({ id: p('D10'), gridId: g2 })
  gpsRows(seed, dayStart, p, offsets, push)
  unplannedRows(seed, dayStart, p, offsets, push)
  return { plans, registered, devices, offsets, records, rows }
}

/** Writes one check-in: gps, a GPS check-in (no tag); resolvedTo, the checkpoint the ingest resolved a tag to (default: the registry's). */
type Push = (deviceId: string, tagId: string, deviceTime: number, receivedAt: number, badge: string | null, gps?: Gps, resolvedTo?: string) => void

/**
 * Scans of checkpoints no plan of the device's grid has, over the three days, from a prng of their
 * own (the rows above stay as they were): tag reads by D1, D2 (G1) and D3 (G2) the ingest resolved
 * to H (registered to G2, in no plan), GPS fixes of D3 it placed in H's geofence (it matches a fix
 * against the device's grid's geofences only), and tag reads it resolved to L, since removed from
 * the registry (no grid). (The rows above have more: G1's devices read tag-e, G2's tag-a.)
 */
function unplannedRows(seed: number, dayStart: number, p: (s: string) => string, offsets: Generated['offsets'], push: Push): void {
  const r = prng(seed * 15_485_863 + 17)
  for (let i = 0; i < 30; i++) {
    const u = r()
    const deviceId = p(u >= 0.4 && u < 0.7 ? 'D3' : (['D1', 'D2', 'D3'][Math.floor(r() * 3)] as string))
    const off = offsets.find((o) => o.deviceId === deviceId)?.offsetMs ?? 0
    const trueAt = dayStart - 26 * 60 * MIN + Math.floor(r() * 76 * 60) * MIN + Math.floor(r() * 60) * 1000
    const deviceTime = trueAt + off + (r() < 0.1 ? 60 * MIN : 0) // now and then an hour ahead: implausible
    const receivedAt = trueAt + 1000 + Math.floor(r() * 5000)
    const badge = r() < 0.5 ? p('P2') : null
    if (u < 0.4) push(deviceId, p('tag-h'), deviceTime, receivedAt, badge)
    else if (u < 0.7) push(deviceId, '', deviceTime, receivedAt, badge, { checkpointId: p('H'), fix: { lat: 31.28 + r() * 0.001, lon: 121.45 + r() * 0.001 } })
    else push(deviceId, p('tag-l'), deviceTime, receivedAt, badge, undefined, p('L'))
  }
}

/** A GPS check-in: no tag; the checkpoint the ingest placed it at by geofence (null: none), its fix (null: none). */
interface Gps {
  checkpointId: string | null
  fix: { lat: number; lon: number } | null
}

/**
 * GPS check-ins (empty tag) over the three days, from a prng of their own (the rows above stay as
 * they were), by devices of G1 and G2 and by D4 (no grid): fixes the ingest placed at a checkpoint,
 * fixes in no geofence around the grids' checkpoints (full-precision coordinates), now and then no
 * fix; some with implausible clocks. D10 (G2) reads GPS without a fix only, a few times a day.
 */
function gpsRows(
  seed: number,
  dayStart: number,
  p: (s: string) => string,
  offsets: Generated['offsets'],
  push: Push,
): void {
  const r = prng(seed * 104_729 + 11)
  const near = [{ lat: 31.23, lon: 121.47 }, { lat: 31.3, lon: 121.4 }]
  for (let i = 0; i < 40; i++) {
    const deviceId = p(['D1', 'D2', 'D3', 'D4'][Math.floor(r() * 4)] as string)
    const off = offsets.find((o) => o.deviceId === deviceId)?.offsetMs ?? 0
    const trueAt = dayStart - 26 * 60 * MIN + Math.floor(r() * 76 * 60) * MIN + Math.floor(r() * 60) * 1000
    const u = r()
    const c = near[Math.floor(r() * near.length)] as { lat: number; lon: number }
    const fix = u < 0.1 ? null : { lat: c.lat + (r() - 0.5) * 0.02, lon: c.lon + (r() - 0.5) * 0.02 }
    const checkpointId = u > 0.8 ? p(['A', 'B', 'E'][Math.floor(r() * 3)] as string) : null
    const deviceTime = trueAt + off + (r() < 0.1 ? 60 * MIN : 0) // now and then an hour ahead: implausible
    push(deviceId, '', deviceTime, trueAt + 1000 + Math.floor(r() * 5000), r() < 0.5 ? p('P1') : null, { checkpointId, fix })
  }
  for (let i = 0; i < 6; i++) {
    const trueAt = dayStart - 20 * 60 * MIN + i * 12 * 60 * MIN + Math.floor(r() * 600) * MIN
    push(p('D10'), '', trueAt, trueAt + 2000, null, { checkpointId: null, fix: null })
  }
}

/**
 * D5 (G1) over the three days, rows in true time order (seqs in that order): its clock
 * runs 40 min ahead until a sync on the day around 09:00 measures +40 min (ack seq: the
 * next), then the device steps its clock right (2 s behind from then on); a sync around
 * 16:00 measures -2 s (ack seq: the next); more rows after it. Timed with the first sync
 * after them, every row is at its true time; timed with the latest (-2 s) the rows before
 * the first sync would be 40 min ahead of their receipt (clock_implausible). Both syncs
 * are measured on the day, within the few days before any evaluated day the store reads.
 */
function d5Rows(
  seed: number,
  dayStart: number,
  p: (s: string) => string,
  offsets: Generated['offsets'],
  push: (deviceId: string, tagId: string, deviceTime: number, receivedAt: number, badge: string | null) => void,
  seq: Map<string, number>,
): void {
  const r = prng(seed * 7919 + 5)
  const deviceId = p('D5')
  const ahead = 40 * MIN
  const behind = -2000
  const sync1 = dayStart + 9 * 60 * MIN + Math.floor(r() * 30) * MIN + 17_000
  const sync2 = dayStart + 16 * 60 * MIN + Math.floor(r() * 30) * MIN + 23_000
  const tags = [p('tag-a'), p('tag-a2'), p('tag-b'), p('C'), p('tag-d'), p('A')]
  const badges = [p('P1'), p('P5')]
  const times: number[] = []
  // 05-09 06:00 … 05-11 20:00 (local), whole minutes or seconds
  for (let i = 0; i < 48; i++) times.push(dayStart - 18 * 60 * MIN + Math.floor(r() * 62 * 60) * MIN + (r() < 0.5 ? 0 : Math.floor(r() * 60) * 1000))
  // and around both syncs on the day
  for (const d of [-50, -20, -6, 4, 15, 40]) times.push(sync1 + d * MIN + Math.floor(r() * 60) * 1000)
  for (const d of [-45, -12, -3, 5, 18, 55]) times.push(sync2 + d * MIN + Math.floor(r() * 60) * 1000)
  times.sort((a, b) => a - b)
  const sync = (measuredAt: number, offsetMs: number) => {
    const s = (seq.get(deviceId) ?? 0) + 1
    seq.set(deviceId, s)
    offsets.push({ deviceId, offsetMs, seq: s, measuredAt })
  }
  let synced = 0
  for (const trueAt of times) {
    if (synced === 0 && trueAt >= sync1) {
      sync(sync1, ahead)
      synced++
    }
    if (synced === 1 && trueAt >= sync2) {
      sync(sync2, behind)
      synced++
    }
    const deviceTime = trueAt + (synced === 0 ? ahead : behind)
    // uploaded live, or now and then a few hours later (within maxUploadDelay)
    const receivedAt = trueAt + 1000 + Math.floor(r() * 4000) + (r() < 0.2 ? Math.floor(r() * 4 * 60) * MIN : 0)
    push(deviceId, tags[Math.floor(r() * tags.length)] as string, deviceTime, receivedAt, badges[Math.floor(r() * badges.length)] ?? null)
  }
}
