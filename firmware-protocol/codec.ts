// Typed encode/decode over the generated static protobufjs code. The only file
// that touches generated/ (STYLE: quarantine). Decoding never throws: every
// byte string yields a value or a ProtocolError naming the field or offset.
import { gridpatrol } from './generated/gridpatrol.js'
import { ProtocolError, type Result } from './errors.ts'
import { MAX_PAYLOAD_BYTES } from './limits.ts'
import { parseTopic, type UplinkKind } from './topics.ts'
import type { Alarm, AckStatus, AlarmKind, CheckIn, Command, CommandAck, ConfigUpdate, GeoFix, ReadMethod, Reading, Status, Telemetry, Uplink } from './types.ts'
import { validateCommand, validateUplink } from './validate.ts'
import { wireReader } from './wire-reader.ts'

const pb = gridpatrol.v1

// Enum tables: index = wire number. 0 (UNSPECIFIED) and unknown numbers are refused.
const READ_METHODS: readonly (ReadMethod | undefined)[] = [undefined, 'nfc', 'rfid', 'ibutton', 'qr', 'gps']
const ALARM_KINDS: readonly (AlarmKind | undefined)[] = [undefined, 'sos', 'tamper', 'man_down', 'low_battery']
const ACK_STATUSES: readonly (AckStatus | undefined)[] = [undefined, 'ok', 'rejected', 'unsupported', 'expired']

const BODY_KIND = { checkIn: 'checkin', telemetry: 'telemetry', status: 'status', alarm: 'alarm', batch: 'batch', commandAck: 'ack' } as const

/** Thrown inside conversion only; caught at the decode boundary. */
class Bad extends Error {
  constructor(readonly error: ProtocolError) {
    super(error.message)
  }
}
const bad = (field: string, message: string): never => {
  throw new Bad(new ProtocolError('GP_PROTO_INVALID', `${field}: ${message}`, field))
}
/** Field path prefix of a batch item (`batch.items[3].`), or '' at the top level. Built only for errors. */
const at = (item: number) => (item < 0 ? '' : `batch.items[${item}].`)

/**
 * int64/uint64 as exact JS numbers. WireReader already yields numbers; a Long
 * (another reader) is converted. Magnitudes ≥ 2^53 stay ≥ 2^53 and are refused
 * by validate.ts, naming the field.
 */
function num(v: unknown): number {
  if (typeof v === 'number') return v
  if (v === undefined || v === null) return 0
  return (v as { toNumber(): number }).toNumber()
}

const hex = (b: Uint8Array | null | undefined) => (b && b.length ? Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex') : undefined)

// Decoding builds plain objects field by field (no spreads, no deletes): V8 keeps
// them in fast mode, and absent optional fields are simply never set.
type Mutable = Record<string, unknown>

type PbFix = gridpatrol.v1.GeoFix.$Properties
function fixIn(f: PbFix): GeoFix {
  const out: GeoFix = { lat: f.lat ?? 0, lon: f.lon ?? 0 }
  // 0 means unknown; NaN is kept so that validation refuses it (not silently dropped).
  const acc = f.accuracyM
  if (acc != null && acc !== 0) out.accuracyM = acc
  const alt = f.altitudeM
  if (alt != null && alt !== 0) out.altitudeM = alt
  const t = num(f.fixTimeMs)
  if (t) out.fixTimeMs = t
  return out
}
const fixOut = (f: GeoFix | undefined): PbFix | undefined =>
  f && { lat: f.lat, lon: f.lon, accuracyM: f.accuracyM ?? 0, altitudeM: f.altitudeM ?? 0, fixTimeMs: f.fixTimeMs ?? 0 }

type PbUplink = gridpatrol.v1.Uplink.$Properties

function checkinIn(c: gridpatrol.v1.CheckIn.$Properties, item: number): CheckIn {
  const method = READ_METHODS[c.method ?? 0]
  if (method === undefined) bad(`${at(item)}check_in.method`, c.method ? `unknown value ${c.method}` : 'required')
  const out: CheckIn = { tagId: c.tagId ?? '', method: method! }
  if (c.fix) out.fix = fixIn(c.fix)
  if (c.badgeId) out.badgeId = c.badgeId
  if (c.batteryPct != null) out.batteryPct = c.batteryPct
  return out
}

function telemetryIn(t: gridpatrol.v1.Telemetry.$Properties): Telemetry {
  const src = t.readings ?? []
  const readings: Reading[] = new Array(src.length)
  for (let i = 0; i < src.length; i++) {
    const r = src[i]!
    const out: Reading = { metric: r.metric ?? '', value: r.value ?? 0 }
    if (r.unit) out.unit = r.unit
    const tm = num(r.timeMs)
    if (tm) out.timeMs = tm
    readings[i] = out
  }
  return { readings }
}

function statusIn(s: gridpatrol.v1.Status.$Properties): Status {
  const out: Status = {}
  if (s.batteryPct != null) out.batteryPct = s.batteryPct
  if (s.signalDbm != null) out.signalDbm = s.signalDbm
  if (s.firmwareVersion) out.firmwareVersion = s.firmwareVersion
  const up = num(s.uptimeS)
  if (up) out.uptimeS = up
  if (s.bufferedCount) out.bufferedCount = s.bufferedCount
  if (s.bootCount) out.bootCount = s.bootCount
  if (s.batteryMv != null) out.batteryMv = s.batteryMv
  if (s.fix) out.fix = fixIn(s.fix)
  return out
}

function alarmIn(a: gridpatrol.v1.Alarm.$Properties, item: number): Alarm {
  const kind = ALARM_KINDS[a.kind ?? 0]
  if (kind === undefined) bad(`${at(item)}alarm.kind`, a.kind ? `unknown value ${a.kind}` : 'required')
  const out: Alarm = { kind: kind! }
  if (a.fix) out.fix = fixIn(a.fix)
  if (a.badgeId) out.badgeId = a.badgeId
  if (a.detail) out.detail = a.detail
  return out
}

function ackIn(a: gridpatrol.v1.CommandAck.$Properties, item: number): CommandAck {
  const status = ACK_STATUSES[a.status ?? 0]
  if (status === undefined) bad(`${at(item)}command_ack.status`, a.status ? `unknown value ${a.status}` : 'required')
  const out: CommandAck = { commandId: a.commandId ?? '', status: status! }
  if (a.detail) out.detail = a.detail
  const t = num(a.receivedDeviceTimeMs)
  if (t) out.receivedDeviceTimeMs = t
  const n = hex(a.nonce)
  if (n !== undefined) out.nonceHex = n
  return out
}

/** Generated message → our Uplink. `item` is the batch item index, -1 at the top level. */
function uplinkIn(m: PbUplink, item: number): Uplink {
  const u: Mutable = { seq: num(m.seq), deviceTimeMs: num(m.deviceTimeMs) }
  if (m.deviceId) u.deviceId = m.deviceId
  if (m.checkIn) {
    u.kind = 'checkin'
    u.checkin = checkinIn(m.checkIn, item)
  } else if (m.telemetry) {
    u.kind = 'telemetry'
    u.telemetry = telemetryIn(m.telemetry)
  } else if (m.status) {
    u.kind = 'status'
    u.status = statusIn(m.status)
  } else if (m.alarm) {
    u.kind = 'alarm'
    u.alarm = alarmIn(m.alarm, item)
  } else if (m.batch) {
    // PROTOCOL.md §5: one level only (also keeps recursion bounded).
    if (item >= 0) bad(`${at(item)}batch`, 'a batch may not contain a batch')
    const src = m.batch.items ?? []
    const items: Uplink[] = new Array(src.length)
    for (let i = 0; i < src.length; i++) items[i] = uplinkIn(src[i]!, i)
    u.kind = 'batch'
    u.batch = { items }
  } else if (m.commandAck) {
    u.kind = 'ack'
    u.ack = ackIn(m.commandAck, item)
  } else bad(`${at(item)}body`, 'missing: expected one of check_in, telemetry, status, alarm, batch, command_ack')
  return u as unknown as Uplink
}

function uplinkOut(u: Uplink): PbUplink {
  const m: PbUplink = { seq: u.seq, deviceTimeMs: u.deviceTimeMs, deviceId: u.deviceId ?? '' }
  switch (u.kind) {
    case 'checkin': {
      const c = u.checkin
      m.checkIn = { tagId: c.tagId, method: READ_METHODS.indexOf(c.method), fix: fixOut(c.fix), badgeId: c.badgeId ?? '', batteryPct: c.batteryPct ?? null }
      break
    }
    case 'telemetry':
      m.telemetry = { readings: u.telemetry.readings.map((r) => ({ metric: r.metric, value: r.value, unit: r.unit ?? '', timeMs: r.timeMs ?? 0 })) }
      break
    case 'status': {
      const s = u.status
      m.status = {
        batteryPct: s.batteryPct ?? null,
        signalDbm: s.signalDbm ?? null,
        firmwareVersion: s.firmwareVersion ?? '',
        uptimeS: s.uptimeS ?? 0,
        bufferedCount: s.bufferedCount ?? 0,
        bootCount: s.bootCount ?? 0,
        batteryMv: s.batteryMv ?? null,
        fix: fixOut(s.fix),
      }
      break
    }
    case 'alarm':
      m.alarm = { kind: ALARM_KINDS.indexOf(u.alarm.kind), fix: fixOut(u.alarm.fix), badgeId: u.alarm.badgeId ?? '', detail: u.alarm.detail ?? '' }
      break
    case 'batch':
      m.batch = { items: u.batch.items.map(uplinkOut) }
      break
    case 'ack': {
      const a = u.ack
      m.commandAck = {
        commandId: a.commandId,
        status: ACK_STATUSES.indexOf(a.status),
        detail: a.detail ?? '',
        receivedDeviceTimeMs: a.receivedDeviceTimeMs ?? 0,
        nonce: a.nonceHex ? Buffer.from(a.nonceHex, 'hex') : EMPTY,
      }
      break
    }
  }
  return m
}
const EMPTY = new Uint8Array(0)

/** Where a payload arrived from: when given, the body must match. */
export interface UplinkContext {
  /** The full topic; checked against the scheme, kind and identity. */
  topic?: string
}

function decodeError(err: unknown, type: string): ProtocolError {
  if (err instanceof Bad) return err.error
  const message = err instanceof Error ? err.message : String(err)
  // protobufjs reports e.g. "index out of range: 12 + 10 > 20" or "invalid wire type 7 at offset 3"
  const offset = /offset (\d+)|range: (\d+)/.exec(message)
  const at = offset ? Number(offset[1] ?? offset[2]) : undefined
  if ((err instanceof RangeError && /call stack/i.test(message)) || /max depth/.test(message))
    return new ProtocolError('GP_PROTO_DECODE', 'message nested too deeply', undefined, at)
  return new ProtocolError('GP_PROTO_DECODE', `not a valid ${type} protobuf: ${message}`, undefined, at)
}

const tooLarge = (n: number): Result<never> => ({
  ok: false,
  error: new ProtocolError('GP_PROTO_TOO_LARGE', `payload is ${n} bytes, at most ${MAX_PAYLOAD_BYTES} allowed`),
})

/**
 * Decodes and validates one uplink payload. With a topic, also checks that the
 * topic is in the scheme, that the body's kind matches the topic's kind and that
 * a device id in the payload equals the topic's (identity).
 */
export function decodeUplink(bytes: Uint8Array, ctx?: UplinkContext): Result<Uplink> {
  if (bytes.length > MAX_PAYLOAD_BYTES) return tooLarge(bytes.length)
  let value: Uplink
  try {
    value = uplinkIn(pb.Uplink.decode(wireReader(bytes)), -1)
  } catch (err) {
    return { ok: false, error: decodeError(err, 'Uplink') }
  }
  const invalid = validateUplink(value)
  if (invalid) return { ok: false, error: invalid }
  const topic = ctx?.topic
  if (topic !== undefined) {
    const t = parseTopic(topic)
    if (!t.ok) return { ok: false, error: new ProtocolError('GP_PROTO_TOPIC', t.reason) }
    if (t.direction !== 'up') return { ok: false, error: new ProtocolError('GP_PROTO_TOPIC', `"${topic}" is not an uplink topic`) }
    if (t.kind !== value.kind)
      return { ok: false, error: new ProtocolError('GP_PROTO_TOPIC_MISMATCH', `topic kind "${t.kind}" but the payload is a ${value.kind} message`, 'body') }
    const other = otherIdentity(value, t.deviceId)
    if (other !== undefined)
      return { ok: false, error: new ProtocolError('GP_PROTO_IDENTITY', `${other.field}: payload claims device "${other.id}" but the topic (the authenticated identity) is "${t.deviceId}"`, other.field) }
  }
  return { ok: true, value }
}

/** DESIGN: the topic's device id is the identity; any id the payload claims must equal it. */
function otherIdentity(u: Uplink, deviceId: string): { id: string; field: string } | undefined {
  if (u.deviceId !== undefined && u.deviceId !== deviceId) return { id: u.deviceId, field: 'device_id' }
  if (u.kind === 'batch') {
    const items = u.batch.items
    for (let i = 0; i < items.length; i++) {
      const id = items[i]!.deviceId
      if (id !== undefined && id !== deviceId) return { id, field: `batch.items[${i}].device_id` }
    }
  }
  return undefined
}

/** Encodes one uplink; throws ProtocolError when the message breaks a rule (a programming error). */
export function encodeUplink(u: Uplink): Uint8Array {
  const invalid = validateUplink(u)
  if (invalid) throw invalid
  const bytes = pb.Uplink.encode(uplinkOut(u)).finish()
  if (bytes.length > MAX_PAYLOAD_BYTES) throw new ProtocolError('GP_PROTO_TOO_LARGE', `encoded payload is ${bytes.length} bytes, at most ${MAX_PAYLOAD_BYTES} allowed`)
  return bytes
}

/** Encodes without validation — for tests and conformance fixtures that need bad messages. */
export function encodeUplinkUnchecked(u: Uplink): Uint8Array {
  return pb.Uplink.encode(uplinkOut(u)).finish()
}

/** The topic kind an uplink belongs on. */
export function uplinkKindOf(u: Uplink): UplinkKind {
  return u.kind
}

type PbCommand = gridpatrol.v1.Command.$Properties

function commandIn(m: PbCommand): Command {
  const c: Mutable = { commandId: m.commandId ?? '', issuedMs: num(m.issuedMs), expiresMs: num(m.expiresMs) }
  if (m.timeSync) {
    c.kind = 'time_sync'
    c.timeSync = { serverTimeMs: num(m.timeSync.serverTimeMs) }
  } else if (m.config) {
    const k = m.config
    const config: ConfigUpdate = {}
    if (k.reportIntervalS != null) config.reportIntervalS = k.reportIntervalS
    if (k.heartbeatIntervalS != null) config.heartbeatIntervalS = k.heartbeatIntervalS
    if (k.lowBatteryPct != null) config.lowBatteryPct = k.lowBatteryPct
    const keys = k.extra ? Object.keys(k.extra) : []
    if (keys.length) {
      const extra: Record<string, string> = {}
      for (const key of keys) Object.defineProperty(extra, key, { value: k.extra![key], enumerable: true, writable: true, configurable: true })
      config.extra = extra
    }
    c.kind = 'config'
    c.config = config
  } else if (m.ping) {
    c.kind = 'ping'
    c.ping = { nonceHex: hex(m.ping.nonce) ?? '' }
  } else bad('kind', 'missing: expected one of time_sync, config, ping')
  return c as unknown as Command
}

function commandOut(c: Command): PbCommand {
  const m: PbCommand = { commandId: c.commandId, issuedMs: c.issuedMs, expiresMs: c.expiresMs }
  switch (c.kind) {
    case 'time_sync':
      m.timeSync = { serverTimeMs: c.timeSync.serverTimeMs }
      break
    case 'ping':
      m.ping = { nonce: Buffer.from(c.ping.nonceHex, 'hex') }
      break
    case 'config': {
      const k = c.config
      m.config = {
        reportIntervalS: k.reportIntervalS ?? null,
        heartbeatIntervalS: k.heartbeatIntervalS ?? null,
        lowBatteryPct: k.lowBatteryPct ?? null,
        extra: k.extra ?? {},
      }
      break
    }
  }
  return m
}

/** Decodes and validates one downlink command (devices and simulators use this). */
export function decodeCommand(bytes: Uint8Array): Result<Command> {
  if (bytes.length > MAX_PAYLOAD_BYTES) return tooLarge(bytes.length)
  let value: Command
  try {
    value = commandIn(pb.Command.decode(wireReader(bytes)))
  } catch (err) {
    return { ok: false, error: decodeError(err, 'Command') }
  }
  const invalid = validateCommand(value)
  return invalid ? { ok: false, error: invalid } : { ok: true, value }
}

export function encodeCommand(c: Command): Uint8Array {
  const invalid = validateCommand(c)
  if (invalid) throw invalid
  const bytes = pb.Command.encode(commandOut(c)).finish()
  if (bytes.length > MAX_PAYLOAD_BYTES) throw new ProtocolError('GP_PROTO_TOO_LARGE', `encoded payload is ${bytes.length} bytes, at most ${MAX_PAYLOAD_BYTES} allowed`)
  return bytes
}

/** Encodes a command without validation — for tests and conformance fixtures. */
export function encodeCommandUnchecked(c: Command): Uint8Array {
  return pb.Command.encode(commandOut(c)).finish()
}

// Kept for the kind table in PROTOCOL.md and tests: protobuf oneof name → topic kind.
export const ONEOF_TO_KIND = BODY_KIND
