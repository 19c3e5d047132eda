// Typed encode/decode over the generated static protobufjs code. The only file
// that touches generated/ (STYLE: quarantine). Decoding never throws: every
// byte string yields a value or a ProtocolError naming the field or offset.
import { gridpatrol } from './generated/gridpatrol.js'
import { ProtocolError, type Result } from './errors.ts'
import { MAX_PAYLOAD_BYTES } from './limits.ts'
import { parseTopic, type UplinkKind } from './topics.ts'
import type { AckStatus, AlarmKind, Command, GeoFix, ReadMethod, Uplink } from './types.ts'
import { validateCommand, validateUplink } from './validate.ts'

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

/** int64/uint64 arrive as Long objects (or numbers); we use exact JS numbers. */
function num(v: unknown, field: string): number {
  if (v === undefined || v === null) return 0
  if (typeof v === 'number') return v
  const l = v as { low: number; high: number; unsigned: boolean; toNumber(): number; toString(): string }
  const n = l.toNumber()
  if (!Number.isSafeInteger(n)) bad(field, `${l.toString()} exceeds 2^53-1`)
  return n
}

function enumOf<T>(table: readonly (T | undefined)[], v: number | undefined | null, field: string): T {
  const r = table[v ?? 0]
  if (r === undefined) bad(field, v ? `unknown value ${v}` : 'required')
  return r as T
}

const hex = (b: Uint8Array | null | undefined) => (b && b.length ? Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex') : undefined)
const str = (s: string | null | undefined) => (s ? s : undefined)
const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v)

type PbFix = gridpatrol.v1.GeoFix.$Properties
function fixIn(f: PbFix | null | undefined, field: string): GeoFix | undefined {
  if (!f) return undefined
  const out: GeoFix = { lat: f.lat ?? 0, lon: f.lon ?? 0 }
  if (f.accuracyM) out.accuracyM = f.accuracyM
  if (f.altitudeM) out.altitudeM = f.altitudeM
  const t = num(f.fixTimeMs, `${field}.fix_time_ms`)
  if (t) out.fixTimeMs = t
  return out
}
const fixOut = (f: GeoFix | undefined): PbFix | undefined =>
  f && { lat: f.lat, lon: f.lon, accuracyM: f.accuracyM ?? 0, altitudeM: f.altitudeM ?? 0, fixTimeMs: f.fixTimeMs ?? 0 }

function strip<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k]
  return o
}

type PbUplink = gridpatrol.v1.Uplink.$Properties

function uplinkIn(m: PbUplink, path: string): Uplink {
  const p = (f: string) => (path ? `${path}.${f}` : f)
  const head = strip({ seq: num(m.seq, p('seq')), deviceTimeMs: num(m.deviceTimeMs, p('device_time_ms')), deviceId: str(m.deviceId) })
  if (m.checkIn) {
    const c = m.checkIn
    const method = enumOf(READ_METHODS, c.method, p('check_in.method'))
    return {
      ...head,
      kind: 'checkin',
      checkin: strip({ tagId: c.tagId ?? '', method, fix: fixIn(c.fix, p('check_in.fix')), badgeId: str(c.badgeId), batteryPct: opt(c.batteryPct) }),
    }
  }
  if (m.telemetry) {
    const readings = (m.telemetry.readings ?? []).map((r, i) =>
      strip({ metric: r.metric ?? '', value: r.value ?? 0, unit: str(r.unit), timeMs: num(r.timeMs, p(`telemetry.readings[${i}].time_ms`)) || undefined }),
    )
    return { ...head, kind: 'telemetry', telemetry: { readings } }
  }
  if (m.status) {
    const s = m.status
    return {
      ...head,
      kind: 'status',
      status: strip({
        batteryPct: opt(s.batteryPct),
        signalDbm: opt(s.signalDbm),
        firmwareVersion: str(s.firmwareVersion),
        uptimeS: num(s.uptimeS, p('status.uptime_s')) || undefined,
        bufferedCount: s.bufferedCount || undefined,
        bootCount: s.bootCount || undefined,
        batteryMv: opt(s.batteryMv),
        fix: fixIn(s.fix, p('status.fix')),
      }),
    }
  }
  if (m.alarm) {
    const a = m.alarm
    return {
      ...head,
      kind: 'alarm',
      alarm: strip({ kind: enumOf(ALARM_KINDS, a.kind, p('alarm.kind')), fix: fixIn(a.fix, p('alarm.fix')), badgeId: str(a.badgeId), detail: str(a.detail) }),
    }
  }
  if (m.batch) {
    if (path) bad(p('batch'), 'a batch may not contain a batch')
    const items = (m.batch.items ?? []).map((it, i) => uplinkIn(it, p(`batch.items[${i}]`)))
    return { ...head, kind: 'batch', batch: { items } }
  }
  if (m.commandAck) {
    const a = m.commandAck
    return {
      ...head,
      kind: 'ack',
      ack: strip({
        commandId: a.commandId ?? '',
        status: enumOf(ACK_STATUSES, a.status, p('command_ack.status')),
        detail: str(a.detail),
        receivedDeviceTimeMs: num(a.receivedDeviceTimeMs, p('command_ack.received_device_time_ms')) || undefined,
        nonceHex: hex(a.nonce),
      }),
    }
  }
  return bad(p('body'), 'missing: expected one of check_in, telemetry, status, alarm, batch, command_ack')
}

function uplinkOut(u: Uplink): PbUplink {
  const head: PbUplink = { seq: u.seq, deviceTimeMs: u.deviceTimeMs, deviceId: u.deviceId ?? '' }
  switch (u.kind) {
    case 'checkin': {
      const c = u.checkin
      return { ...head, checkIn: { tagId: c.tagId, method: READ_METHODS.indexOf(c.method), fix: fixOut(c.fix), badgeId: c.badgeId ?? '', ...(c.batteryPct !== undefined ? { batteryPct: c.batteryPct } : {}) } }
    }
    case 'telemetry':
      return { ...head, telemetry: { readings: u.telemetry.readings.map((r) => ({ metric: r.metric, value: r.value, unit: r.unit ?? '', timeMs: r.timeMs ?? 0 })) } }
    case 'status': {
      const s = u.status
      return {
        ...head,
        status: {
          ...(s.batteryPct !== undefined ? { batteryPct: s.batteryPct } : {}),
          ...(s.signalDbm !== undefined ? { signalDbm: s.signalDbm } : {}),
          ...(s.batteryMv !== undefined ? { batteryMv: s.batteryMv } : {}),
          firmwareVersion: s.firmwareVersion ?? '',
          uptimeS: s.uptimeS ?? 0,
          bufferedCount: s.bufferedCount ?? 0,
          bootCount: s.bootCount ?? 0,
          fix: fixOut(s.fix),
        },
      }
    }
    case 'alarm':
      return { ...head, alarm: { kind: ALARM_KINDS.indexOf(u.alarm.kind), fix: fixOut(u.alarm.fix), badgeId: u.alarm.badgeId ?? '', detail: u.alarm.detail ?? '' } }
    case 'batch':
      return { ...head, batch: { items: u.batch.items.map(uplinkOut) } }
    case 'ack': {
      const a = u.ack
      return {
        ...head,
        commandAck: {
          commandId: a.commandId,
          status: ACK_STATUSES.indexOf(a.status),
          detail: a.detail ?? '',
          receivedDeviceTimeMs: a.receivedDeviceTimeMs ?? 0,
          nonce: a.nonceHex ? Buffer.from(a.nonceHex, 'hex') : new Uint8Array(0),
        },
      }
    }
  }
}

/** Where a payload arrived from: when given, the body must match. */
export interface UplinkContext {
  /** The full topic; checked against the scheme, kind and identity. */
  topic?: string
}

function decodeError(err: unknown): ProtocolError {
  if (err instanceof Bad) return err.error
  const message = err instanceof Error ? err.message : String(err)
  // protobufjs reports e.g. "index out of range: 12 + 10 > 20" or "invalid wire type 7 at offset 3"
  const offset = /offset (\d+)|range: (\d+)/.exec(message)
  const at = offset ? Number(offset[1] ?? offset[2]) : undefined
  if (err instanceof RangeError && /call stack/i.test(message)) return new ProtocolError('GP_PROTO_DECODE', 'message nested too deeply', undefined, at)
  return new ProtocolError('GP_PROTO_DECODE', `not a valid Uplink protobuf: ${message}`, undefined, at)
}

/**
 * Decodes and validates one uplink payload. With a topic, also checks that the
 * topic is in the scheme, that the body's kind matches the topic's kind and that
 * a device id in the payload equals the topic's (identity).
 */
export function decodeUplink(bytes: Uint8Array, ctx: UplinkContext = {}): Result<Uplink> {
  if (bytes.length > MAX_PAYLOAD_BYTES)
    return { ok: false, error: new ProtocolError('GP_PROTO_TOO_LARGE', `payload is ${bytes.length} bytes, at most ${MAX_PAYLOAD_BYTES} allowed`) }
  let value: Uplink
  try {
    value = uplinkIn(pb.Uplink.decode(bytes), '')
  } catch (err) {
    return { ok: false, error: decodeError(err) }
  }
  const invalid = validateUplink(value)
  if (invalid) return { ok: false, error: invalid }
  if (ctx.topic !== undefined) {
    const t = parseTopic(ctx.topic)
    if (!t.ok) return { ok: false, error: new ProtocolError('GP_PROTO_TOPIC', t.reason) }
    if (t.direction !== 'up') return { ok: false, error: new ProtocolError('GP_PROTO_TOPIC', `"${ctx.topic}" is not an uplink topic`) }
    if (t.kind !== value.kind)
      return { ok: false, error: new ProtocolError('GP_PROTO_TOPIC_MISMATCH', `topic kind "${t.kind}" but the payload is a ${value.kind} message`, 'body') }
    const claimed = [value.deviceId, ...(value.kind === 'batch' ? value.batch.items.map((i) => i.deviceId) : [])]
    const other = claimed.find((id) => id !== undefined && id !== t.deviceId)
    if (other !== undefined)
      return { ok: false, error: new ProtocolError('GP_PROTO_IDENTITY', `payload claims device "${other}" but the topic (the authenticated identity) is "${t.deviceId}"`, 'device_id') }
  }
  return { ok: true, value }
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
  const head = { commandId: m.commandId ?? '', issuedMs: num(m.issuedMs, 'issued_ms'), expiresMs: num(m.expiresMs, 'expires_ms') }
  if (m.timeSync) return { ...head, kind: 'time_sync', timeSync: { serverTimeMs: num(m.timeSync.serverTimeMs, 'time_sync.server_time_ms') } }
  if (m.ping) return { ...head, kind: 'ping', ping: { nonceHex: hex(m.ping.nonce) ?? '' } }
  if (m.config) {
    const c = m.config
    const extra = c.extra && Object.keys(c.extra).length ? { ...c.extra } : undefined
    return {
      ...head,
      kind: 'config',
      config: strip({ reportIntervalS: opt(c.reportIntervalS), heartbeatIntervalS: opt(c.heartbeatIntervalS), lowBatteryPct: opt(c.lowBatteryPct), extra }),
    }
  }
  return bad('kind', 'missing: expected one of time_sync, config, ping')
}

function commandOut(c: Command): PbCommand {
  const head: PbCommand = { commandId: c.commandId, issuedMs: c.issuedMs, expiresMs: c.expiresMs }
  switch (c.kind) {
    case 'time_sync':
      return { ...head, timeSync: { serverTimeMs: c.timeSync.serverTimeMs } }
    case 'ping':
      return { ...head, ping: { nonce: Buffer.from(c.ping.nonceHex, 'hex') } }
    case 'config': {
      const k = c.config
      return {
        ...head,
        config: {
          ...(k.reportIntervalS !== undefined ? { reportIntervalS: k.reportIntervalS } : {}),
          ...(k.heartbeatIntervalS !== undefined ? { heartbeatIntervalS: k.heartbeatIntervalS } : {}),
          ...(k.lowBatteryPct !== undefined ? { lowBatteryPct: k.lowBatteryPct } : {}),
          extra: k.extra ?? {},
        },
      }
    }
  }
}

/** Decodes and validates one downlink command (devices and simulators use this). */
export function decodeCommand(bytes: Uint8Array): Result<Command> {
  if (bytes.length > MAX_PAYLOAD_BYTES)
    return { ok: false, error: new ProtocolError('GP_PROTO_TOO_LARGE', `payload is ${bytes.length} bytes, at most ${MAX_PAYLOAD_BYTES} allowed`) }
  let value: Command
  try {
    value = commandIn(pb.Command.decode(bytes))
  } catch (err) {
    return { ok: false, error: decodeError(err) }
  }
  const invalid = validateCommand(value)
  return invalid ? { ok: false, error: invalid } : { ok: true, value }
}

export function encodeCommand(c: Command): Uint8Array {
  const invalid = validateCommand(c)
  if (invalid) throw invalid
  return pb.Command.encode(commandOut(c)).finish()
}

// Kept for the kind table in PROTOCOL.md and tests: protobuf oneof name → topic kind.
export const ONEOF_TO_KIND = BODY_KIND
