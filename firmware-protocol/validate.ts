// Semantic rules beyond protobuf (PROTOCOL.md §4). Each check returns the first
// broken rule as a ProtocolError naming the field; nothing here throws.
import { ProtocolError } from './errors.ts'
import * as L from './limits.ts'
import { DEVICE_ID_PATTERN } from './topics.ts'
import type { Alarm, CheckIn, Command, CommandAck, GeoFix, Status, Telemetry, Uplink } from './types.ts'

type Check = ProtocolError | undefined

// Field paths are built only when a rule is broken: `at` is the prefix of the
// enclosing message ('' at the top level, 'batch.items[3].' inside a batch).
const invalid = (field: string, message: string) => new ProtocolError('GP_PROTO_INVALID', `${field}: ${message}`, field)

function int(at: string, field: string, v: number | undefined, min: number, max: number, required = false): Check {
  if (v === undefined) return required ? invalid(at + field, 'required') : undefined
  if (!Number.isSafeInteger(v)) return invalid(at + field, `${v} is not an integer within 2^53`)
  if (v < min || v > max) return invalid(at + field, `${v} is out of range ${min}..${max}`)
  return undefined
}

/** Code points; a string of n UTF-16 units has at most n code points. */
const chars = (s: string, max: number) => (s.length <= max ? s.length : [...s].length)
/** UTF-8 bytes; a UTF-16 unit takes at most 3 bytes. */
const bytes = (s: string, max: number) => (s.length * 3 <= max ? s.length : Buffer.byteLength(s, 'utf8'))

function text(at: string, field: string, v: string | undefined, max: number): Check {
  if (v === undefined) return undefined
  const n = chars(v, max)
  if (n > max) return invalid(at + field, `${n} characters, at most ${max} allowed`)
  if (v.includes('\u0000')) return invalid(at + field, 'contains a NUL character')
  return undefined
}

function utf8Bytes(at: string, field: string, v: string, max: number): Check {
  const n = bytes(v, max)
  if (n > max) return invalid(at + field, `${n} bytes, at most ${max} allowed`)
  if (v.includes('\u0000')) return invalid(at + field, 'contains a NUL character')
  return undefined
}

const HEX = /^(?:[0-9a-f]{2})*$/
function nonce(at: string, field: string, v: string | undefined): Check {
  if (v === undefined) return undefined
  if (!HEX.test(v)) return invalid(at + field, 'must be lower-case hex, two digits per byte')
  if (v.length / 2 > L.MAX_NONCE_BYTES) return invalid(at + field, `${v.length / 2} bytes, at most ${L.MAX_NONCE_BYTES} allowed`)
  return undefined
}

function fix(at: string, f: GeoFix | undefined): Check {
  if (f === undefined) return undefined
  if (!(f.lat >= -90 && f.lat <= 90)) return invalid(`${at}.lat`, `${f.lat} is not a latitude in -90..90`)
  if (!(f.lon >= -180 && f.lon <= 180)) return invalid(`${at}.lon`, `${f.lon} is not a longitude in -180..180`)
  if (f.accuracyM !== undefined && !(f.accuracyM >= 0 && f.accuracyM < Infinity)) return invalid(`${at}.accuracy_m`, `${f.accuracyM} must be a finite number ≥ 0`)
  if (f.altitudeM !== undefined && !Number.isFinite(f.altitudeM)) return invalid(`${at}.altitude_m`, `${f.altitudeM} must be finite`)
  return int(at, '.fix_time_ms', f.fixTimeMs, 0, L.MAX_SAFE)
}

function checkin(at: string, c: CheckIn): Check {
  if (c.method === 'gps') {
    if (!c.fix) return invalid(`${at}check_in.fix`, 'required when method is GPS')
  } else if (c.tagId.length === 0) return invalid(`${at}check_in.tag_id`, `required (1..${L.MAX_TAG_ID_BYTES} bytes) unless method is GPS`)
  return (
    utf8Bytes(at, 'check_in.tag_id', c.tagId, L.MAX_TAG_ID_BYTES) ??
    (c.fix && fix(`${at}check_in.fix`, c.fix)) ??
    text(at, 'check_in.badge_id', c.badgeId, L.MAX_BADGE_ID_CHARS) ??
    int(at, 'check_in.battery_pct', c.batteryPct, 0, 100)
  )
}

function telemetry(at: string, t: Telemetry): Check {
  const readings = t.readings
  if (readings.length === 0) return invalid(`${at}telemetry.readings`, 'at least one reading required')
  if (readings.length > L.MAX_READINGS) return invalid(`${at}telemetry.readings`, `${readings.length} readings, at most ${L.MAX_READINGS} allowed`)
  for (let i = 0; i < readings.length; i++) {
    const r = readings[i]!
    if (!L.METRIC_PATTERN.test(r.metric)) return invalid(`${at}telemetry.readings[${i}].metric`, `"${r.metric}" must match [a-z0-9_.]{1,64}`)
    if (!Number.isFinite(r.value)) return invalid(`${at}telemetry.readings[${i}].value`, `${r.value} is not a finite number`)
    const e = text(at, `telemetry.readings[${i}].unit`, r.unit, L.MAX_UNIT_CHARS) ?? int(at, `telemetry.readings[${i}].time_ms`, r.timeMs, 0, L.MAX_SAFE)
    if (e) return e
  }
  return undefined
}

function status(at: string, s: Status): Check {
  return (
    int(at, 'status.battery_pct', s.batteryPct, 0, 100) ??
    int(at, 'status.signal_dbm', s.signalDbm, -150, 0) ??
    text(at, 'status.firmware_version', s.firmwareVersion, L.MAX_FIRMWARE_CHARS) ??
    int(at, 'status.uptime_s', s.uptimeS, 0, L.MAX_SAFE) ??
    int(at, 'status.buffered_count', s.bufferedCount, 0, 0xffffffff) ??
    int(at, 'status.boot_count', s.bootCount, 0, 0xffffffff) ??
    (s.batteryMv !== undefined && !(s.batteryMv >= 0 && s.batteryMv < Infinity) ? invalid(`${at}status.battery_mv`, `${s.batteryMv} must be a finite number ≥ 0`) : undefined) ??
    (s.fix && fix(`${at}status.fix`, s.fix))
  )
}

function alarm(at: string, a: Alarm): Check {
  return (
    (a.fix && fix(`${at}alarm.fix`, a.fix)) ??
    text(at, 'alarm.badge_id', a.badgeId, L.MAX_BADGE_ID_CHARS) ??
    text(at, 'alarm.detail', a.detail, L.MAX_DETAIL_CHARS)
  )
}

function ack(at: string, a: CommandAck): Check {
  if (a.commandId.length === 0) return invalid(`${at}command_ack.command_id`, 'required')
  return (
    text(at, 'command_ack.command_id', a.commandId, L.MAX_COMMAND_ID_CHARS) ??
    text(at, 'command_ack.detail', a.detail, L.MAX_DETAIL_CHARS) ??
    int(at, 'command_ack.received_device_time_ms', a.receivedDeviceTimeMs, 0, L.MAX_SAFE) ??
    nonce(at, 'command_ack.nonce', a.nonceHex)
  )
}

function envelope(at: string, u: Uplink): Check {
  if (u.kind === 'batch') {
    if (at) return invalid(`${at}batch`, 'a batch may not contain a batch')
    if (u.seq !== 0) return invalid('seq', `a batch envelope's seq must be 0 (its items carry sequence numbers), got ${u.seq}`)
  } else if (u.seq === 0 || u.seq === undefined) return invalid(`${at}seq`, 'required (≥ 1)')
  else {
    const e = int(at, 'seq', u.seq, 1, L.MAX_SAFE)
    if (e) return e
  }
  if (u.deviceTimeMs === 0 || u.deviceTimeMs === undefined) return invalid(`${at}device_time_ms`, 'required (Unix ms UTC)')
  const t = int(at, 'device_time_ms', u.deviceTimeMs, 1, L.MAX_SAFE)
  if (t) return t
  if (u.deviceId !== undefined && !DEVICE_ID_PATTERN.test(u.deviceId)) return invalid(`${at}device_id`, `"${u.deviceId}" must match [A-Za-z0-9_-]{1,64}`)
  return undefined
}

function body(at: string, u: Uplink): Check {
  switch (u.kind) {
    case 'checkin':
      return checkin(at, u.checkin)
    case 'telemetry':
      return telemetry(at, u.telemetry)
    case 'status':
      return status(at, u.status)
    case 'alarm':
      return alarm(at, u.alarm)
    case 'ack':
      return ack(at, u.ack)
    case 'batch':
      return batch(u)
    default:
      return invalid(`${at}body`, `unknown kind "${(u as { kind: unknown }).kind}"`)
  }
}

function batch(u: Uplink & { kind: 'batch' }): Check {
  const items = u.batch.items
  if (items.length === 0) return invalid('batch.items', 'at least one item required')
  if (items.length > L.MAX_BATCH_ITEMS) return invalid('batch.items', `${items.length} items, at most ${L.MAX_BATCH_ITEMS} allowed`)
  let prev = 0
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!
    const at = `batch.items[${i}].`
    const e = envelope(at, item) ?? body(at, item)
    if (e) return e
    // PROTOCOL.md §5: items ascend strictly by seq (no duplicates inside one batch).
    if (item.seq <= prev) return invalid(`${at}seq`, `${item.seq} is not greater than the previous item's ${prev} (items ascend by seq)`)
    prev = item.seq
    if (u.deviceId !== undefined && item.deviceId !== undefined && item.deviceId !== u.deviceId)
      return new ProtocolError('GP_PROTO_IDENTITY', `${at}device_id: "${item.deviceId}" differs from the batch's "${u.deviceId}"`, `${at}device_id`)
  }
  return undefined
}

/** Checks one envelope (recursing into a batch); the first broken rule, naming its field. */
export function validateUplink(u: Uplink): ProtocolError | undefined {
  return envelope('', u) ?? body('', u)
}

const EXTRA_KEY = /^[A-Za-z0-9_.-]{1,64}$/

export function validateCommand(c: Command): ProtocolError | undefined {
  if (c.commandId.length === 0) return invalid('command_id', 'required')
  const e =
    text('', 'command_id', c.commandId, L.MAX_COMMAND_ID_CHARS) ??
    int('', 'issued_ms', c.issuedMs, 0, L.MAX_SAFE) ??
    int('', 'expires_ms', c.expiresMs, 0, L.MAX_SAFE)
  if (e) return e
  switch (c.kind) {
    case 'time_sync':
      return int('', 'time_sync.server_time_ms', c.timeSync.serverTimeMs, 1, L.MAX_SAFE, true)
    case 'ping':
      return nonce('', 'ping.nonce', c.ping.nonceHex)
    case 'config': {
      const k = c.config
      const extra = Object.keys(k.extra ?? {})
      if (extra.length > L.MAX_CONFIG_EXTRA_KEYS) return invalid('config.extra', `${extra.length} keys, at most ${L.MAX_CONFIG_EXTRA_KEYS} allowed`)
      for (const key of extra) {
        if (!EXTRA_KEY.test(key)) return invalid(`config.extra["${key.slice(0, 80)}"]`, 'key must match [A-Za-z0-9_.-]{1,64}')
        const v = text('', `config.extra["${key}"]`, k.extra![key], L.MAX_CONFIG_EXTRA_VALUE_CHARS)
        if (v) return v
      }
      return (
        int('', 'config.report_interval_s', k.reportIntervalS, 10, 86_400) ??
        int('', 'config.heartbeat_interval_s', k.heartbeatIntervalS, 30, 86_400) ??
        int('', 'config.low_battery_pct', k.lowBatteryPct, 1, 99)
      )
    }
    default:
      return invalid('kind', `unknown kind "${(c as { kind: unknown }).kind}"`)
  }
}

export type ClockVerdict = 'ok' | 'future' | 'ancient'

/**
 * How plausible a device time is against the server's receipt time. Implausible
 * clocks are flagged on the stored row, never rewritten (DESIGN: two clocks).
 */
export function checkDeviceClock(deviceTimeMs: number, receivedAtMs: number): ClockVerdict {
  if (deviceTimeMs > receivedAtMs + L.CLOCK_FUTURE_TOLERANCE_MS) return 'future'
  if (deviceTimeMs < L.CLOCK_EPOCH_FLOOR_MS) return 'ancient'
  return 'ok'
}
