// Semantic rules beyond protobuf (PROTOCOL.md §4). Each check returns the first
// broken rule as a ProtocolError naming the field; nothing here throws.
import { ProtocolError } from './errors.ts'
import * as L from './limits.ts'
import { DEVICE_ID_PATTERN } from './topics.ts'
import type { Alarm, CheckIn, Command, CommandAck, GeoFix, Status, Telemetry, Uplink } from './types.ts'

type Check = ProtocolError | undefined

const invalid = (field: string, message: string) => new ProtocolError('GP_PROTO_INVALID', `${field}: ${message}`, field)
const chars = (s: string) => [...s].length

function int(field: string, v: number | undefined, min: number, max: number, required = false): Check {
  if (v === undefined) return required ? invalid(field, 'required') : undefined
  if (!Number.isSafeInteger(v)) return invalid(field, `${v} is not an integer within 2^53`)
  if (v < min || v > max) return invalid(field, `${v} is out of range ${min}..${max}`)
  return undefined
}

function text(field: string, v: string | undefined, max: number, unit: 'chars' | 'bytes' = 'chars'): Check {
  if (v === undefined) return undefined
  const n = unit === 'chars' ? chars(v) : Buffer.byteLength(v, 'utf8')
  if (n > max) return invalid(field, `${n} ${unit === 'chars' ? 'characters' : 'bytes'}, at most ${max} allowed`)
  if (v.includes('\u0000')) return invalid(field, 'contains a NUL character')
  return undefined
}

function fix(field: string, f: GeoFix | undefined): Check {
  if (f === undefined) return undefined
  if (!Number.isFinite(f.lat) || f.lat < -90 || f.lat > 90) return invalid(`${field}.lat`, `${f.lat} is not a latitude in -90..90`)
  if (!Number.isFinite(f.lon) || f.lon < -180 || f.lon > 180) return invalid(`${field}.lon`, `${f.lon} is not a longitude in -180..180`)
  if (f.accuracyM !== undefined && (!Number.isFinite(f.accuracyM) || f.accuracyM < 0)) return invalid(`${field}.accuracy_m`, `${f.accuracyM} must be a finite number ≥ 0`)
  if (f.altitudeM !== undefined && !Number.isFinite(f.altitudeM)) return invalid(`${field}.altitude_m`, 'must be finite')
  return int(`${field}.fix_time_ms`, f.fixTimeMs, 0, L.MAX_SAFE)
}

function checkin(p: string, c: CheckIn): Check {
  if (c.method === 'gps') {
    if (!c.fix) return invalid(`${p}.fix`, 'required when method is GPS')
  } else if (c.tagId.length === 0) return invalid(`${p}.tag_id`, 'required (1..128 bytes) unless method is GPS')
  return (
    text(`${p}.tag_id`, c.tagId, L.MAX_TAG_ID_BYTES, 'bytes') ??
    fix(`${p}.fix`, c.fix) ??
    text(`${p}.badge_id`, c.badgeId, L.MAX_BADGE_ID_CHARS) ??
    int(`${p}.battery_pct`, c.batteryPct, 0, 100)
  )
}

function telemetry(p: string, t: Telemetry): Check {
  if (t.readings.length === 0) return invalid(`${p}.readings`, 'at least one reading required')
  if (t.readings.length > L.MAX_READINGS) return invalid(`${p}.readings`, `${t.readings.length} readings, at most ${L.MAX_READINGS} allowed`)
  for (const [i, r] of t.readings.entries()) {
    const f = `${p}.readings[${i}]`
    if (!L.METRIC_PATTERN.test(r.metric)) return invalid(`${f}.metric`, `"${r.metric}" must match [a-z0-9_.]{1,64}`)
    if (!Number.isFinite(r.value)) return invalid(`${f}.value`, `${r.value} is not a finite number`)
    const e = text(`${f}.unit`, r.unit, L.MAX_UNIT_CHARS) ?? int(`${f}.time_ms`, r.timeMs, 0, L.MAX_SAFE)
    if (e) return e
  }
  return undefined
}

function status(p: string, s: Status): Check {
  return (
    int(`${p}.battery_pct`, s.batteryPct, 0, 100) ??
    int(`${p}.signal_dbm`, s.signalDbm, -150, 0) ??
    text(`${p}.firmware_version`, s.firmwareVersion, L.MAX_FIRMWARE_CHARS) ??
    int(`${p}.uptime_s`, s.uptimeS, 0, L.MAX_SAFE) ??
    (s.batteryMv !== undefined && (!Number.isFinite(s.batteryMv) || s.batteryMv < 0) ? invalid(`${p}.battery_mv`, 'must be a finite number ≥ 0') : undefined) ??
    fix(`${p}.fix`, s.fix)
  )
}

function alarm(p: string, a: Alarm): Check {
  return fix(`${p}.fix`, a.fix) ?? text(`${p}.badge_id`, a.badgeId, L.MAX_BADGE_ID_CHARS) ?? text(`${p}.detail`, a.detail, L.MAX_DETAIL_CHARS)
}

function ack(p: string, a: CommandAck): Check {
  if (a.commandId.length === 0) return invalid(`${p}.command_id`, 'required')
  return (
    text(`${p}.command_id`, a.commandId, L.MAX_COMMAND_ID_CHARS) ??
    text(`${p}.detail`, a.detail, L.MAX_DETAIL_CHARS) ??
    int(`${p}.received_device_time_ms`, a.receivedDeviceTimeMs, 0, L.MAX_SAFE) ??
    (a.nonceHex !== undefined && a.nonceHex.length / 2 > L.MAX_NONCE_BYTES ? invalid(`${p}.nonce`, `at most ${L.MAX_NONCE_BYTES} bytes`) : undefined)
  )
}

/** Checks one envelope (recursing into a batch). `path` prefixes field names. */
export function validateUplink(u: Uplink, path = ''): ProtocolError | undefined {
  const p = (f: string) => (path ? `${path}.${f}` : f)
  if (u.kind === 'batch') {
    if (path) return invalid(p('batch'), 'a batch may not contain a batch')
    if (u.seq !== 0) return invalid(p('seq'), `a batch envelope's seq must be 0 (its items carry sequence numbers), got ${u.seq}`)
  } else {
    const e = int(p('seq'), u.seq, 1, L.MAX_SAFE, true)
    if (e) return u.seq === 0 ? invalid(p('seq'), 'required (≥ 1)') : e
  }
  if (u.deviceTimeMs === 0) return invalid(p('device_time_ms'), 'required (Unix ms UTC)')
  const t = int(p('device_time_ms'), u.deviceTimeMs, 1, L.MAX_SAFE)
  if (t) return t
  if (u.deviceId !== undefined && !DEVICE_ID_PATTERN.test(u.deviceId)) return invalid(p('device_id'), `"${u.deviceId}" must match [A-Za-z0-9_-]{1,64}`)
  switch (u.kind) {
    case 'checkin':
      return checkin(p('check_in'), u.checkin)
    case 'telemetry':
      return telemetry(p('telemetry'), u.telemetry)
    case 'status':
      return status(p('status'), u.status)
    case 'alarm':
      return alarm(p('alarm'), u.alarm)
    case 'ack':
      return ack(p('command_ack'), u.ack)
    case 'batch': {
      const items = u.batch.items
      if (items.length === 0) return invalid(p('batch.items'), 'at least one item required')
      if (items.length > L.MAX_BATCH_ITEMS) return invalid(p('batch.items'), `${items.length} items, at most ${L.MAX_BATCH_ITEMS} allowed`)
      let prev = 0
      for (const [i, item] of items.entries()) {
        const f = p(`batch.items[${i}]`)
        const e = validateUplink(item, f)
        if (e) return e
        if (item.seq <= prev) return invalid(`${f}.seq`, `${item.seq} is not greater than the previous item's ${prev} (items ascend by seq)`)
        prev = item.seq
        if (u.deviceId !== undefined && item.deviceId !== undefined && item.deviceId !== u.deviceId)
          return new ProtocolError('GP_PROTO_IDENTITY', `${f}.device_id: "${item.deviceId}" differs from the batch's "${u.deviceId}"`, `${f}.device_id`)
      }
      return undefined
    }
  }
}

export function validateCommand(c: Command): ProtocolError | undefined {
  if (c.commandId.length === 0) return invalid('command_id', 'required')
  const e =
    text('command_id', c.commandId, L.MAX_COMMAND_ID_CHARS) ??
    int('issued_ms', c.issuedMs, 0, L.MAX_SAFE) ??
    int('expires_ms', c.expiresMs, 0, L.MAX_SAFE)
  if (e) return e
  switch (c.kind) {
    case 'time_sync':
      return int('time_sync.server_time_ms', c.timeSync.serverTimeMs, 1, L.MAX_SAFE, true)
    case 'ping':
      return c.ping.nonceHex.length / 2 > L.MAX_NONCE_BYTES ? invalid('ping.nonce', `at most ${L.MAX_NONCE_BYTES} bytes`) : undefined
    case 'config': {
      const k = c.config
      const extra = Object.keys(k.extra ?? {})
      if (extra.length > L.MAX_CONFIG_EXTRA_KEYS) return invalid('config.extra', `at most ${L.MAX_CONFIG_EXTRA_KEYS} keys`)
      return (
        int('config.report_interval_s', k.reportIntervalS, 10, 86_400) ??
        int('config.heartbeat_interval_s', k.heartbeatIntervalS, 30, 86_400) ??
        int('config.low_battery_pct', k.lowBatteryPct, 1, 99)
      )
    }
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
