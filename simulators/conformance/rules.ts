// The conformance rules: each is a pure check over what the kit recorded.
// Rule ids are stable (vendors' CI greps them); PROTOCOL.md sections cited.
import {
  MAX_BATCH_ITEMS,
  PRESENCE_OFFLINE,
  PRESENCE_ONLINE,
  checkDeviceClock,
  commandTopic,
  decodeCommand,
  decodeUplink,
  parseTopic,
  presenceTopic,
  type Uplink,
} from '../../firmware-protocol/index.ts'
import type { PublishRecord, Recording } from './server.ts'

export const RULES = {
  'connect.identity': 'CONNECT: client id = username = device id, and the secret is accepted',
  'connect.session': 'CONNECT: persistent session (clean session = false) so queued commands survive',
  'connect.last-will': 'CONNECT: last will "offline", retained, QoS 1 on gp/v1/{id}/presence; fired when the link drops',
  'presence.online': 'After every connect: retained "online" on gp/v1/{id}/presence, QoS 1',
  'subscribe.commands': 'Subscribes to its own gp/v1/{id}/down/cmd with QoS 1, nothing else',
  'topic.identity': 'Publishes only under gp/v1/{its id}/; a device_id in the payload equals it',
  'payload.schema': 'Every uplink decodes and validates against gridpatrol.v1 and matches its topic kind',
  'publish.qos': 'Uplinks and presence are published with QoS 1',
  'seq.monotonic': 'Sequence numbers never reused (re-sends are byte-identical), ascending, and continue across reconnects',
  'timestamps.plausible': 'Device times are plausible (after 2020, not ahead of the server by > 5 min)',
  'batch.rules': 'Batch: envelope seq 0, 1..500 items ascending by seq, no nested batch',
  'kinds.observed': 'Published every expected uplink kind',
  'command.ack': 'Every command acknowledged on .../up/ack: same command id, expired ones as "expired", ping nonce echoed, t1 set',
  'command.expired-sync': 'An already expired time_sync is acked "expired" with its command id and t1 (received_device_time_ms) set: the server measures the clock offset from it (§6)',
  'offline.batch': 'What was recorded while offline is uploaded after reconnect as a batch',
} as const

export type RuleId = keyof typeof RULES

export interface Violation {
  message: string
  atMs?: number
  topic?: string
  /** The offending payload (or will payload), hex. */
  hex?: string
}

export interface RuleResult {
  id: RuleId
  title: string
  status: 'pass' | 'fail' | 'skip'
  note?: string
  violations: Violation[]
}

export interface RuleContext {
  deviceId: string
  expectKinds: readonly string[]
  /** Mark names the script sets: 'offline' (drop), 'reconnect' (accepting again). */
  offlineTested: boolean
}

interface Decoded {
  rec: PublishRecord
  env?: Uplink
  error?: { code: string; message: string; field?: string }
}

const hex = (b: Buffer) => (b.length > 512 ? `${b.subarray(0, 512).toString('hex')}… (${b.length} bytes)` : b.toString('hex'))

function isBatchError(d: Decoded): boolean {
  const f = d.error?.field ?? ''
  return parseTopic(d.rec.topic).ok && (parseTopic(d.rec.topic) as { kind?: string }).kind === 'batch' && (f === 'seq' || f.startsWith('batch'))
}

export function evaluate(rec: Recording, ctx: RuleContext): RuleResult[] {
  const out = new Map<RuleId, RuleResult>()
  for (const id of Object.keys(RULES) as RuleId[]) out.set(id, { id, title: RULES[id], status: 'pass', violations: [] })
  const fail = (id: RuleId, v: Violation) => out.get(id)!.violations.push(v)
  const skip = (id: RuleId, note: string) => Object.assign(out.get(id)!, { status: 'skip', note })
  const id = ctx.deviceId
  const pres = presenceTopic(id)

  // --- CONNECT ---
  const accepted = rec.connects.filter((c) => !c.refused || c.refused.startsWith('the kit'))
  if (rec.connects.length === 0) fail('connect.identity', { message: 'the device never connected' })
  for (const c of accepted) {
    if (c.clientId !== id) fail('connect.identity', { message: `client id "${c.clientId}" is not the device id "${id}"`, atMs: c.atMs })
    if (c.username !== id) fail('connect.identity', { message: `username "${c.username ?? ''}" is not the device id "${id}"`, atMs: c.atMs })
    if (!c.passwordOk) fail('connect.identity', { message: 'the password is not the device secret', atMs: c.atMs })
    if (c.clean) fail('connect.session', { message: `session ${c.session} connected with clean session = true`, atMs: c.atMs })
    const w = c.will
    if (!w) fail('connect.last-will', { message: `session ${c.session}: CONNECT carries no last will`, atMs: c.atMs })
    else if (w.topic !== pres || w.payload.toString() !== PRESENCE_OFFLINE || w.qos !== 1 || !w.retain)
      fail('connect.last-will', { message: `will is ${w.topic} "${w.payload.toString()}" qos ${w.qos} retain ${w.retain}; expected ${pres} "offline" qos 1 retained`, atMs: c.atMs, topic: w.topic, hex: hex(w.payload) })
  }
  const wills = rec.publishes.filter((p) => p.will)
  if (ctx.offlineTested && accepted.some((c) => c.will) && wills.length === 0) fail('connect.last-will', { message: 'the link was dropped but no will was published' })

  // --- presence and subscriptions, per session ---
  const sessions = [...new Set(rec.connects.filter((c) => !c.refused).map((c) => c.session))]
  for (const s of sessions) {
    const p = rec.publishes.find((x) => x.session === s && x.topic === pres && !x.will)
    if (!p) fail('presence.online', { message: `session ${s}: no "online" published on ${pres}` })
    else if (p.payload.toString() !== PRESENCE_ONLINE || !p.retain || p.qos !== 1)
      fail('presence.online', { message: `session ${s}: presence "${p.payload.toString()}" retain ${p.retain} qos ${p.qos}`, atMs: p.atMs, topic: p.topic, hex: hex(p.payload) })
    const sub = rec.subscribes.filter((x) => x.session === s)
    const cmd = sub.find((x) => x.topic === commandTopic(id))
    if (!cmd) fail('subscribe.commands', { message: `session ${s}: never subscribed to ${commandTopic(id)}` })
    else if (cmd.qos !== 1) fail('subscribe.commands', { message: `session ${s}: subscribed to ${cmd.topic} with QoS ${cmd.qos}`, atMs: cmd.atMs })
    for (const x of sub) if (x.topic !== commandTopic(id)) fail('subscribe.commands', { message: `subscribed to "${x.topic}" outside its own command topic`, atMs: x.atMs })
  }

  // --- every uplink ---
  const uplinks: Decoded[] = []
  for (const p of rec.publishes) {
    if (p.will || p.topic === pres) {
      if (!p.will && p.qos !== 1) fail('publish.qos', { message: `presence published with QoS ${p.qos}`, atMs: p.atMs, topic: p.topic, hex: hex(p.payload) })
      continue
    }
    const t = parseTopic(p.topic)
    const v: Violation = { message: '', atMs: p.atMs, topic: p.topic, hex: hex(p.payload) }
    if (!t.ok || t.direction !== 'up') {
      fail('topic.identity', { ...v, message: t.ok ? `published on a ${t.direction} topic` : t.reason })
      continue
    }
    if (t.deviceId !== id) {
      fail('topic.identity', { ...v, message: `published under "${t.deviceId}" but authenticated as "${id}"` })
      continue
    }
    if (p.qos !== 1) fail('publish.qos', { ...v, message: `uplink published with QoS ${p.qos} (must be 1)` })
    const r = decodeUplink(p.payload, { topic: p.topic })
    const d: Decoded = r.ok ? { rec: p, env: r.value } : { rec: p, error: { code: r.error.code, message: r.error.message, ...(r.error.field ? { field: r.error.field } : {}) } }
    uplinks.push(d)
    if (d.error) {
      if (d.error.code === 'GP_PROTO_IDENTITY') fail('topic.identity', { ...v, message: d.error.message })
      else if (isBatchError(d)) fail('batch.rules', { ...v, message: d.error.message })
      else fail('payload.schema', { ...v, message: `${d.error.code}: ${d.error.message}` })
    }
  }

  // --- batches, seq, timestamps ---
  const seen = new Map<number, string>() // seq → payload hex of the envelope
  let maxBefore = 0 // highest seq seen in earlier sessions
  let maxThis = 0
  let lastLive = 0
  let session = 0
  const flat: { env: Uplink; d: Decoded; inBatch: boolean }[] = []
  for (const d of uplinks) {
    if (!d.env) continue
    if (d.rec.session !== session) {
      session = d.rec.session
      maxBefore = Math.max(maxBefore, maxThis)
      lastLive = 0
    }
    const v: Violation = { message: '', atMs: d.rec.atMs, topic: d.rec.topic, hex: hex(d.rec.payload) }
    if (d.env.kind === 'batch') {
      if (d.env.batch.items.length > MAX_BATCH_ITEMS) fail('batch.rules', { ...v, message: `${d.env.batch.items.length} items` })
      for (const it of d.env.batch.items) flat.push({ env: it, d, inBatch: true })
    } else flat.push({ env: d.env, d, inBatch: false })
    const members = d.env.kind === 'batch' ? d.env.batch.items : [d.env]
    for (const e of members) {
      const key = JSON.stringify(e)
      const prior = seen.get(e.seq)
      if (prior !== undefined) {
        if (prior !== key) fail('seq.monotonic', { ...v, message: `seq ${e.seq} reused for a different ${e.kind} message (seq must never be reused)` })
        continue
      }
      seen.set(e.seq, key)
      if (e.seq <= maxBefore) fail('seq.monotonic', { ...v, message: `new seq ${e.seq} after reconnect is not above ${maxBefore}, the highest seq of earlier connections` })
      if (d.env.kind !== 'batch') {
        if (e.seq <= lastLive) fail('seq.monotonic', { ...v, message: `seq ${e.seq} after ${lastLive} in the same connection` })
        lastLive = e.seq
      }
      maxThis = Math.max(maxThis, e.seq)
      const clock = checkDeviceClock(e.deviceTimeMs, d.rec.atMs)
      if (clock !== 'ok') fail('timestamps.plausible', { ...v, message: `seq ${e.seq}: device time ${new Date(e.deviceTimeMs).toISOString()} is ${clock} (received ${new Date(d.rec.atMs).toISOString()})` })
    }
  }

  // --- kinds ---
  const kinds = new Set(flat.map((f) => f.env.kind))
  for (const k of ctx.expectKinds) if (!kinds.has(k as Uplink['kind'])) fail('kinds.observed', { message: `no ${k} message seen` })

  // --- commands ---
  const acks = flat.filter((f) => f.env.kind === 'ack')
  if (rec.commands.length === 0) skip('command.ack', 'no commands were sent')
  for (const c of rec.commands) {
    const a = acks.find((x) => x.env.kind === 'ack' && x.env.ack.commandId === c.commandId)
    if (!a || a.env.kind !== 'ack') {
      fail('command.ack', { message: `${c.kind} command "${c.commandId}" was never acknowledged`, atMs: c.atMs, topic: commandTopic(id), hex: hex(c.payload) })
      continue
    }
    const ack = a.env.ack
    const v: Violation = { message: '', atMs: a.d.rec.atMs, topic: a.d.rec.topic, hex: hex(a.d.rec.payload) }
    // Acked expired when it was not: by its own clock it may have been. Say so, with how far ahead
    // that clock is (what the vendor must fix).
    const sent = decodeCommand(new Uint8Array(c.payload))
    const t1 = ack.receivedDeviceTimeMs
    const ahead =
      ack.status === 'expired' && c.expectStatus !== 'expired' && sent.ok && t1 && sent.value.expiresMs > 0 && t1 > sent.value.expiresMs
        ? Math.round((t1 - c.atMs) / 1000)
        : undefined
    if (ahead !== undefined) {
      fail('command.ack', {
        ...v,
        message: `${c.kind} "${c.commandId}" acked "expired": it expired by the device's clock, which read ${new Date(t1!).toISOString()} on receipt, ≈ ${ahead} s ahead of the kit's; set the device clock (NTP, GNSS, or the time sync: PROTOCOL.md §6)`,
      })
    } else if (c.expectStatus && ack.status !== c.expectStatus) fail('command.ack', { ...v, message: `${c.kind} "${c.commandId}" acked "${ack.status}", expected "${c.expectStatus}"` })
    else if (c.expectStatus === undefined && ack.status === 'expired') fail('command.ack', { ...v, message: `${c.kind} "${c.commandId}" acked "expired" but it had not expired` })
    if (c.nonceHex && ack.status === 'ok' && ack.nonceHex !== c.nonceHex) fail('command.ack', { ...v, message: `ping nonce ${ack.nonceHex ?? '(none)'} is not the one sent (${c.nonceHex})` })
    if (c.kind === 'time_sync' && ack.status === 'ok' && !ack.receivedDeviceTimeMs) fail('command.ack', { ...v, message: 'time_sync ack lacks received_device_time_ms (t1)' })
  }

  // --- an expired time sync (PROTOCOL.md §6): the EXPIRED ack still carries t1 ---
  // A device whose clock runs ahead by more than a sync's time-to-live judges every sync
  // expired; the server measures its offset from these acks, so t1 is required here.
  const expiredSyncs = rec.commands.filter((c) => c.kind === 'time_sync' && c.expectStatus === 'expired')
  if (expiredSyncs.length === 0) skip('command.expired-sync', 'no expired time_sync was sent')
  for (const c of expiredSyncs) {
    const a = acks.find((x) => x.env.kind === 'ack' && x.env.ack.commandId === c.commandId)
    if (!a || a.env.kind !== 'ack') {
      fail('command.expired-sync', { message: `expired time_sync "${c.commandId}" was never acknowledged`, atMs: c.atMs, topic: commandTopic(id), hex: hex(c.payload) })
      continue
    }
    const ack = a.env.ack
    const v: Violation = { message: '', atMs: a.d.rec.atMs, topic: a.d.rec.topic, hex: hex(a.d.rec.payload) }
    if (ack.status !== 'expired') fail('command.expired-sync', { ...v, message: `expired time_sync "${c.commandId}" acked "${ack.status}", expected "expired"` })
    if (!ack.receivedDeviceTimeMs)
      fail('command.expired-sync', { ...v, message: `expired time_sync "${c.commandId}": its ack lacks received_device_time_ms (t1); an EXPIRED time-sync ack must carry the device's receive time (PROTOCOL.md §6)` })
  }

  // --- offline → batch ---
  const drop = rec.marks.find((m) => m.name === 'offline')
  if (!ctx.offlineTested || !drop) skip('offline.batch', 'offline phase not run')
  else {
    const after = uplinks.filter((d) => d.rec.atMs > drop.atMs && d.rec.topic.endsWith('/up/batch'))
    if (after.length === 0) fail('offline.batch', { message: 'no batch was uploaded after the forced offline period (did the device record anything while offline?)' })
  }

  for (const r of out.values()) if (r.status !== 'skip' && r.violations.length > 0) r.status = 'fail'
  return [...out.values()]
}
