#!/usr/bin/env -S npx tsx
// Generates the golden vectors in firmware-protocol/vectors/ (PROTOCOL.md §10).
// Deterministic: fixed instants, no randomness — running it twice gives the same
// files, and test/firmware-protocol/vectors.test.ts fails when the committed
// files differ from what this script and the codec produce.
//
//   npx tsx firmware-protocol/scripts/gen-vectors.ts           write vectors/*.json
//   npx tsx firmware-protocol/scripts/gen-vectors.ts --check   exit 1 when stale
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  commandTopic,
  decodeCommand,
  decodeUplink,
  encodeCommand,
  encodeCommandUnchecked,
  encodeFrame,
  encodeUplink,
  encodeUplinkUnchecked,
  uplinkTopic,
  type Command,
  type ProtocolErrorCode,
  type Uplink,
  type UplinkKind,
} from '../index.ts'

/** One golden vector file. */
export interface Vector {
  name: string
  description: string
  /** 'uplink' (device → server, decodeUplink) or 'downlink' (server → device, decodeCommand). */
  direction: 'uplink' | 'downlink'
  topic: string
  /** The MQTT payload, lower-case hex. */
  hex: string
  /** The same payload as one serial frame: COBS(payload ‖ CRC-32 LE) ‖ 00 (PROTOCOL.md §7). */
  serialHex: string
  /** Valid vectors: the decoded message exactly as decodeUplink / decodeCommand return it. */
  message?: unknown
  /** Set when re-encoding `message` does not give `hex` back (unknown fields are dropped): what the encoder gives. */
  canonicalHex?: string
  /** Invalid vectors: the error the decoder must report (with the topic as context). */
  expectedError?: { code: ProtocolErrorCode; field?: string }
}

// Fixed instants: 2026-01-15 08:00:00 UTC (16:00 in Shanghai) and offsets from it.
const T0 = Date.UTC(2026, 0, 15, 8, 0, 0)
const DEV = 'gp-dev-0001'
const SENSOR = 'gp-sensor-0042'
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex')

// Minimal protobuf writer for hand-crafted bytes (unknown fields, bad wire types).
function varint(n: number | bigint): number[] {
  let v = BigInt(n)
  if (v < 0n) v += 1n << 64n
  const out: number[] = []
  do {
    let b = Number(v & 0x7fn)
    v >>= 7n
    if (v > 0n) b |= 0x80
    out.push(b)
  } while (v > 0n)
  return out
}
const key = (field: number, wire: number) => varint((field << 3) | wire)
const fVarint = (field: number, v: number | bigint) => [...key(field, 0), ...varint(v)]
const fBytes = (field: number, bytes: Uint8Array | number[]) => [...key(field, 2), ...varint(bytes.length), ...bytes]
const fString = (field: number, s: string) => fBytes(field, [...Buffer.from(s, 'utf8')])
const fFixed32 = (field: number, n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return [...key(field, 5), ...b]
}
const fDouble = (field: number, d: number) => {
  const b = Buffer.alloc(8)
  b.writeDoubleLE(d)
  return [...key(field, 1), ...b]
}

function uplink(name: string, description: string, deviceId: string, u: Uplink): Vector {
  const bytes = encodeUplink(u)
  const decoded = decodeUplink(bytes, { topic: uplinkTopic(deviceId, u.kind) })
  if (!decoded.ok) throw new Error(`${name}: does not decode: ${decoded.error.message}`)
  return { name, description, direction: 'uplink', topic: uplinkTopic(deviceId, u.kind), hex: hexOf(bytes), serialHex: hexOf(encodeFrame(bytes)), message: decoded.value }
}

function uplinkRaw(name: string, description: string, deviceId: string, kind: UplinkKind, bytes: Uint8Array): Vector {
  const topic = uplinkTopic(deviceId, kind)
  const decoded = decodeUplink(bytes, { topic })
  if (!decoded.ok) throw new Error(`${name}: does not decode: ${decoded.error.message}`)
  const v: Vector = { name, description, direction: 'uplink', topic, hex: hexOf(bytes), serialHex: hexOf(encodeFrame(bytes)), message: decoded.value }
  const canonical = hexOf(encodeUplink(decoded.value))
  if (canonical !== v.hex) v.canonicalHex = canonical
  return v
}

function badUplink(name: string, description: string, topic: string, bytes: Uint8Array, code: ProtocolErrorCode, field?: string): Vector {
  const r = decodeUplink(bytes, { topic })
  if (r.ok) throw new Error(`${name}: expected ${code}, but it decodes`)
  if (r.error.code !== code || r.error.field !== field) throw new Error(`${name}: expected ${code} ${field}, got ${r.error.code} ${r.error.field}: ${r.error.message}`)
  return { name, description, direction: 'uplink', topic, hex: hexOf(bytes), serialHex: hexOf(encodeFrame(bytes)), expectedError: field === undefined ? { code } : { code, field } }
}

function command(name: string, description: string, c: Command): Vector {
  const bytes = encodeCommand(c)
  const decoded = decodeCommand(bytes)
  if (!decoded.ok) throw new Error(`${name}: does not decode: ${decoded.error.message}`)
  return { name, description, direction: 'downlink', topic: commandTopic(DEV), hex: hexOf(bytes), serialHex: hexOf(encodeFrame(bytes)), message: decoded.value }
}

function badCommand(name: string, description: string, bytes: Uint8Array, code: ProtocolErrorCode, field?: string): Vector {
  const r = decodeCommand(bytes)
  if (r.ok) throw new Error(`${name}: expected ${code}, but it decodes`)
  if (r.error.code !== code || r.error.field !== field) throw new Error(`${name}: expected ${code} ${field}, got ${r.error.code} ${r.error.field}: ${r.error.message}`)
  return { name, description, direction: 'downlink', topic: commandTopic(DEV), hex: hexOf(bytes), serialHex: hexOf(encodeFrame(bytes)), expectedError: field === undefined ? { code } : { code, field } }
}

const SHANGHAI = { lat: 31.230416, lon: 121.473701, accuracyM: 4.5 }
const checkinNfc: Uplink = {
  seq: 1042,
  deviceTimeMs: T0,
  deviceId: DEV,
  kind: 'checkin',
  checkin: { tagId: '04A3B2C1D2E380', method: 'nfc', fix: SHANGHAI, badgeId: 'W-1024', batteryPct: 87 },
}
const minimalCheckin = (seq: number, t: number): Uplink => ({ seq, deviceTimeMs: t, kind: 'checkin', checkin: { tagId: `E2801160600002${(seq % 65536).toString(16).toUpperCase().padStart(4, '0')}`, method: 'rfid' } })

const METRICS: Array<[string, string, (i: number) => number]> = [
  ['water_level', 'm', (i) => 1.25 + i / 100],
  ['temperature', 'C', (i) => -12.5 + i / 4],
  ['tilt', 'deg', (i) => (i % 7) - 3],
  ['smoke', 'ppm', (i) => i * 3],
  ['cover.open', '', (i) => i % 2],
]

export function buildVectors(): Vector[] {
  const v: Vector[] = []

  // ---- check-ins -----------------------------------------------------------
  v.push(uplink('checkin-nfc', 'Check-in at an NFC tag with every field set: GPS fix (Shanghai), patroller badge, battery, device id.', DEV, checkinNfc))
  v.push(uplink('checkin-minimal-rfid', 'The smallest valid check-in: seq 1, device time, RFID tag id, method. No device id in the payload (the topic is the identity).', DEV, minimalCheckin(1, T0)))
  v.push(uplink('checkin-ibutton', 'iButton touch point: tag id is the 64-bit ROM id in upper-case hex (family code first).', DEV, {
    seq: 1043, deviceTimeMs: T0 + 61_000, kind: 'checkin', checkin: { tagId: '01B2C3D4E5F60718', method: 'ibutton', badgeId: 'W-1024' },
  }))
  v.push(uplink('checkin-qr', 'QR plate: tag id is the decoded text of the code, here a URL.', DEV, {
    seq: 1044, deviceTimeMs: T0 + 122_000, kind: 'checkin', checkin: { tagId: 'https://grid.example.cn/cp/310101-007-0042', method: 'qr', batteryPct: 86 },
  }))
  v.push(uplink('checkin-gps-no-tag', 'GPS geofence check-in without a tag: tag_id empty, fix required; the fix carries its own time and altitude.', DEV, {
    seq: 1045, deviceTimeMs: T0 + 183_000, kind: 'checkin',
    checkin: { tagId: '', method: 'gps', fix: { lat: 31.2397, lon: 121.4998, accuracyM: 8, altitudeM: 12.25, fixTimeMs: T0 + 181_500 } },
  }))
  v.push(uplink('checkin-unicode-badge', 'Badge id in Chinese (UTF-8, 3 bytes per character); limits count characters (code points), not bytes.', DEV, {
    seq: 1046, deviceTimeMs: T0 + 244_000, kind: 'checkin', checkin: { tagId: '04A3B2C1D2E381', method: 'nfc', badgeId: '网格员-张伟-07号' },
  }))
  v.push(uplink('checkin-southern-western', 'Southern and western hemisphere (Buenos Aires): negative latitude and longitude; altitude below the ellipsoid is negative.', DEV, {
    seq: 1047, deviceTimeMs: T0 + 305_000, kind: 'checkin',
    checkin: { tagId: '04A3B2C1D2E382', method: 'nfc', fix: { lat: -34.603722, lon: -58.381592, accuracyM: 3.5, altitudeM: -2.5 } },
  }))
  v.push(uplink('checkin-max-tag-id', 'Longest allowed tag id: exactly 128 UTF-8 bytes (QR text).', DEV, {
    seq: 1048, deviceTimeMs: T0 + 366_000, kind: 'checkin', checkin: { tagId: 'Q'.repeat(100) + '-'.repeat(4) + 'x'.repeat(24), method: 'qr' },
  }))
  {
    // Hand-crafted: a newer device adds fields 99 (varint) and 100 (bytes) to the
    // envelope and 99 (fixed32) / 16 (double) to the check-in. v1 readers skip them.
    const body = [...fString(1, '04A3B2C1D2E383'), ...fVarint(2, 1), ...fFixed32(99, 0xdeadbeef), ...fDouble(16, 1.5)]
    const bytes = Uint8Array.from([...fVarint(1, 1049), ...fVarint(2, T0 + 427_000), ...fBytes(10, body), ...fVarint(99, 42), ...fString(100, 'future')])
    v.push(uplinkRaw('checkin-unknown-future-fields', 'Unknown (future) fields in the envelope (99 varint, 100 bytes) and in the check-in (99 fixed32, 16 double): decoded and ignored. canonicalHex is the same message re-encoded without them.', DEV, 'checkin', bytes))
  }
  v.push(uplink('checkin-large-seq', 'A sequence number beyond 32 bits (uint64 varint of 6 bytes): seq survives reboots and keeps growing; up to 2^53-1 is accepted.', DEV, {
    seq: 2 ** 40 + 7, deviceTimeMs: T0 + 488_000, kind: 'checkin', checkin: { tagId: '04A3B2C1D2E384', method: 'nfc' },
  }))

  // ---- telemetry -------------------------------------------------------------
  v.push(uplink('telemetry-single', 'One water-level reading from a sensor, taken at the envelope time (time_ms absent).', SENSOR, {
    seq: 77, deviceTimeMs: T0, kind: 'telemetry', telemetry: { readings: [{ metric: 'water_level', value: 1.37, unit: 'm' }] },
  }))
  v.push(uplink('telemetry-100-readings', 'The most readings one Telemetry may carry (100): five metrics, each reading with its own device time, negative and zero values.', SENSOR, {
    seq: 78, deviceTimeMs: T0 + 600_000, kind: 'telemetry',
    telemetry: {
      readings: Array.from({ length: 100 }, (_, i) => {
        const [metric, unit, value] = METRICS[i % METRICS.length]!
        return unit ? { metric, value: value(i), unit, timeMs: T0 + i * 6_000 } : { metric, value: value(i), timeMs: T0 + i * 6_000 }
      }),
    },
  }))

  // ---- status ----------------------------------------------------------------
  v.push(uplink('status-full', 'Heartbeat with every field: battery %, signal (dBm, sint32), firmware, uptime, offline buffer, boot count, battery voltage (float), last position.', DEV, {
    seq: 1050, deviceTimeMs: T0 + 900_000, deviceId: DEV, kind: 'status',
    status: { batteryPct: 64, signalDbm: -87, firmwareVersion: 'gp-fw 2.4.1', uptimeS: 86_400 * 3 + 17, bufferedCount: 12, bootCount: 31, batteryMv: 3712.5, fix: SHANGHAI },
  }))
  v.push(uplink('status-empty', 'The smallest heartbeat: a Status body with no fields (an empty embedded message) — "I am alive".', SENSOR, { seq: 79, deviceTimeMs: T0 + 900_000, kind: 'status', status: {} }))
  v.push(uplink('status-zero-battery', 'battery_pct 0 is a real value (proto3 optional: present on the wire), distinct from "not reported".', SENSOR, {
    seq: 80, deviceTimeMs: T0 + 960_000, kind: 'status', status: { batteryPct: 0, signalDbm: 0 },
  }))

  // ---- alarms ----------------------------------------------------------------
  v.push(uplink('alarm-sos', 'SOS button with position, badge and a free-text detail in Chinese.', DEV, {
    seq: 1051, deviceTimeMs: T0 + 1_000_000, kind: 'alarm', alarm: { kind: 'sos', fix: SHANGHAI, badgeId: 'W-1024', detail: '巡查员按下求救按钮' },
  }))
  v.push(uplink('alarm-tamper', 'Enclosure opened on a sensor; no position known.', SENSOR, { seq: 81, deviceTimeMs: T0 + 1_000_000, kind: 'alarm', alarm: { kind: 'tamper', detail: 'lid switch open' } }))
  v.push(uplink('alarm-man-down', 'Fall / no-motion detector.', DEV, { seq: 1052, deviceTimeMs: T0 + 1_060_000, kind: 'alarm', alarm: { kind: 'man_down', fix: { lat: 31.2301, lon: 121.4741, accuracyM: 12 }, badgeId: 'W-1024' } }))
  v.push(uplink('alarm-low-battery', 'Battery under the configured threshold (ConfigUpdate.low_battery_pct).', DEV, { seq: 1053, deviceTimeMs: T0 + 1_120_000, kind: 'alarm', alarm: { kind: 'low_battery' } }))

  // ---- command acks ------------------------------------------------------------
  v.push(uplink('ack-ok-time-sync', 'Ack of a TimeSync: received_device_time_ms is t1 (device clock when the command arrived); the envelope device_time_ms is t2 (when the ack was sent).', DEV, {
    seq: 1054, deviceTimeMs: T0 + 2_000_180, kind: 'ack', ack: { commandId: 'cmd-7f3a-0001', status: 'ok', receivedDeviceTimeMs: T0 + 2_000_150 },
  }))
  v.push(uplink('ack-ok-ping-nonce', "Ack of a Ping: the ping's nonce echoed byte for byte.", DEV, {
    seq: 1055, deviceTimeMs: T0 + 2_100_000, kind: 'ack', ack: { commandId: 'cmd-7f3a-0003', status: 'ok', receivedDeviceTimeMs: T0 + 2_099_990, nonceHex: '00c0ffee00000001' },
  }))
  v.push(uplink('ack-rejected', 'Understood but refused: a setting out of the device\'s range; detail says why.', DEV, {
    seq: 1056, deviceTimeMs: T0 + 2_200_000, kind: 'ack', ack: { commandId: 'cmd-7f3a-0002', status: 'rejected', detail: 'report_interval_s 10 below device minimum 60' },
  }))
  v.push(uplink('ack-unsupported', 'Command kind not implemented by this device.', SENSOR, { seq: 82, deviceTimeMs: T0 + 2_200_000, kind: 'ack', ack: { commandId: 'cmd-7f3a-0004', status: 'unsupported' } }))
  v.push(uplink('ack-expired', 'Arrived after expires_ms by the device clock: not applied.', DEV, {
    seq: 1057, deviceTimeMs: T0 + 9_000_000, kind: 'ack', ack: { commandId: 'cmd-7f3a-0005', status: 'expired', receivedDeviceTimeMs: T0 + 8_999_000 },
  }))

  // ---- batches -------------------------------------------------------------------
  v.push(uplink('batch-mixed', 'Store-and-forward batch: envelope seq 0; items of several kinds, each with its own seq (ascending, gaps allowed) and device time.', DEV, {
    seq: 0, deviceTimeMs: T0 + 3_600_000, deviceId: DEV, kind: 'batch',
    batch: {
      items: [
        minimalCheckin(2001, T0 + 60_000),
        { seq: 2002, deviceTimeMs: T0 + 120_000, kind: 'status', status: { batteryPct: 55, bufferedCount: 3 } },
        { seq: 2004, deviceTimeMs: T0 + 180_000, kind: 'alarm', alarm: { kind: 'low_battery' } },
        { seq: 2005, deviceTimeMs: T0 + 240_000, deviceId: DEV, kind: 'checkin', checkin: { tagId: '', method: 'gps', fix: { lat: 31.2302, lon: 121.4702 } } },
      ],
    },
  }))
  v.push(uplink('batch-500', 'The largest allowed batch: 500 check-ins buffered offline, seq 5001..5500, one per minute.', DEV, {
    seq: 0, deviceTimeMs: T0 + 30_000_000, kind: 'batch',
    batch: { items: Array.from({ length: 500 }, (_, i) => minimalCheckin(5001 + i, T0 + i * 60_000)) },
  }))

  // ---- downlink commands ------------------------------------------------------------
  v.push(command('cmd-time-sync', 'TimeSync: server_time_ms is t0. The device acks with received_device_time_ms = t1.', {
    commandId: 'cmd-7f3a-0001', issuedMs: T0 + 2_000_000, expiresMs: T0 + 2_060_000, kind: 'time_sync', timeSync: { serverTimeMs: T0 + 2_000_000 },
  }))
  v.push(command('cmd-config', 'ConfigUpdate with every setting and two vendor-specific extra keys (map<string,string>); expires in 24 h.', {
    commandId: 'cmd-7f3a-0002', issuedMs: T0 + 2_150_000, expiresMs: T0 + 2_150_000 + 86_400_000, kind: 'config',
    config: { reportIntervalS: 300, heartbeatIntervalS: 600, lowBatteryPct: 15, extra: { 'nfc.power': 'high', 'vendor.led': 'off' } },
  }))
  v.push(command('cmd-config-partial', 'ConfigUpdate changing one setting; absent settings stay as they are. Never expires (expires_ms 0 → field absent).', {
    commandId: 'cmd-7f3a-0006', issuedMs: T0 + 2_300_000, expiresMs: 0, kind: 'config', config: { heartbeatIntervalS: 120 },
  }))
  v.push(command('cmd-ping', 'Ping with an 8-byte nonce (containing zero bytes) to be echoed in the ack.', {
    commandId: 'cmd-7f3a-0003', issuedMs: T0 + 2_099_000, expiresMs: T0 + 2_399_000, kind: 'ping', ping: { nonceHex: '00c0ffee00000001' },
  }))

  // ---- invalid uplinks ---------------------------------------------------------------
  const topicDev = (k: UplinkKind) => uplinkTopic(DEV, k)
  const nfcBytes = encodeUplink(checkinNfc)
  v.push(badUplink('invalid-truncated', `checkin-nfc cut after 40 of its ${nfcBytes.length} bytes: the check_in field's length runs past the end.`, topicDev('checkin'), nfcBytes.subarray(0, 40), 'GP_PROTO_DECODE'))
  v.push(badUplink('invalid-bad-wire-type', 'A key with wire type 7 (does not exist in protobuf) after a valid seq.', topicDev('checkin'), Uint8Array.from([...fVarint(1, 5), 0x0f, 0x01]), 'GP_PROTO_DECODE'))
  v.push(badUplink('invalid-bad-utf8', 'tag_id is not valid UTF-8 (a lone 0xFF byte): strings must be UTF-8.', topicDev('checkin'),
    Uint8Array.from([...fVarint(1, 9), ...fVarint(2, T0), ...fBytes(10, [...fBytes(1, [0x41, 0xff, 0x42]), ...fVarint(2, 1)])]), 'GP_PROTO_DECODE'))
  const bad = (u: Uplink) => encodeUplinkUnchecked(u)
  v.push(badUplink('invalid-seq-zero', 'seq 0 on a non-batch envelope: sequence numbers start at 1.', topicDev('checkin'), bad({ ...minimalCheckin(1, T0), seq: 0 }), 'GP_PROTO_INVALID', 'seq'))
  v.push(badUplink('invalid-seq-too-large', 'seq 2^53 (9007199254740992): beyond the largest exactly representable sequence number.', topicDev('checkin'),
    Uint8Array.from([...fVarint(1, 2n ** 53n), ...fVarint(2, T0), ...fBytes(10, [...fString(1, 'A1'), ...fVarint(2, 1)])]), 'GP_PROTO_INVALID', 'seq'))
  v.push(badUplink('invalid-missing-body', 'Envelope with seq and device time but no body (none of check_in … command_ack).', topicDev('checkin'), Uint8Array.from([...fVarint(1, 3), ...fVarint(2, T0)]), 'GP_PROTO_INVALID', 'body'))
  v.push(badUplink('invalid-missing-device-time', 'device_time_ms absent (0): every envelope carries the device clock.', topicDev('checkin'), bad({ ...minimalCheckin(4, T0), deviceTimeMs: 0 }), 'GP_PROTO_INVALID', 'device_time_ms'))
  v.push(badUplink('invalid-negative-device-time', 'device_time_ms negative (int64 -1, ten-byte varint).', topicDev('checkin'), bad({ ...minimalCheckin(4, T0), deviceTimeMs: -1 }), 'GP_PROTO_INVALID', 'device_time_ms'))
  v.push(badUplink('invalid-topic-kind-mismatch', 'A valid check-in published on the telemetry topic: the body kind must match the topic.', topicDev('telemetry'), encodeUplink(minimalCheckin(5, T0)), 'GP_PROTO_TOPIC_MISMATCH', 'body'))
  v.push(badUplink('invalid-identity-mismatch', 'The payload claims device gp-dev-0002 on gp-dev-0001\'s topic: the topic is the authenticated identity.', topicDev('checkin'),
    encodeUplink({ ...minimalCheckin(6, T0), deviceId: 'gp-dev-0002' }), 'GP_PROTO_IDENTITY', 'device_id'))
  v.push(badUplink('invalid-batch-item-identity', 'A batch item claims another device.', topicDev('batch'),
    encodeUplink({ seq: 0, deviceTimeMs: T0, kind: 'batch', batch: { items: [minimalCheckin(7, T0), { ...minimalCheckin(8, T0), deviceId: 'gp-dev-0002' }] } }), 'GP_PROTO_IDENTITY', 'batch.items[1].device_id'))
  v.push(badUplink('invalid-nested-batch', 'A batch inside a batch: items are never batches.', topicDev('batch'),
    bad({ seq: 0, deviceTimeMs: T0, kind: 'batch', batch: { items: [{ seq: 0, deviceTimeMs: T0, kind: 'batch', batch: { items: [minimalCheckin(9, T0)] } }] } }), 'GP_PROTO_INVALID', 'batch.items[0].batch'))
  v.push(badUplink('invalid-batch-unordered', 'Batch items must ascend strictly by seq: 11 follows 12.', topicDev('batch'),
    bad({ seq: 0, deviceTimeMs: T0, kind: 'batch', batch: { items: [minimalCheckin(10, T0), minimalCheckin(12, T0 + 1000), minimalCheckin(11, T0 + 2000)] } }), 'GP_PROTO_INVALID', 'batch.items[2].seq'))
  v.push(badUplink('invalid-batch-501', 'One item over the batch limit of 500.', topicDev('batch'),
    bad({ seq: 0, deviceTimeMs: T0, kind: 'batch', batch: { items: Array.from({ length: 501 }, (_, i) => minimalCheckin(1 + i, T0 + i)) } }), 'GP_PROTO_INVALID', 'batch.items'))
  v.push(badUplink('invalid-batch-seq-nonzero', "A batch envelope's own seq must be 0 (only its items carry sequence numbers).", topicDev('batch'),
    bad({ seq: 13, deviceTimeMs: T0, kind: 'batch', batch: { items: [minimalCheckin(14, T0)] } }), 'GP_PROTO_INVALID', 'seq'))
  v.push(badUplink('invalid-batch-empty', 'A batch with no items.', topicDev('batch'), bad({ seq: 0, deviceTimeMs: T0, kind: 'batch', batch: { items: [] } }), 'GP_PROTO_INVALID', 'batch.items'))
  v.push(badUplink('invalid-lat-out-of-range', 'Latitude 91.5 is outside -90..90.', topicDev('checkin'),
    bad({ seq: 21, deviceTimeMs: T0, kind: 'checkin', checkin: { tagId: '04A3B2C1D2E380', method: 'nfc', fix: { lat: 91.5, lon: 121.47 } } }), 'GP_PROTO_INVALID', 'check_in.fix.lat'))
  v.push(badUplink('invalid-unknown-enum', 'Read method 9 is not defined in v1 (enum values are checked, not passed through).', topicDev('checkin'),
    Uint8Array.from([...fVarint(1, 15), ...fVarint(2, T0), ...fBytes(10, [...fString(1, '04A3B2C1D2E380'), ...fVarint(2, 9)])]), 'GP_PROTO_INVALID', 'check_in.method'))
  v.push(badUplink('invalid-missing-method', 'A check-in without a read method (0 = UNSPECIFIED).', topicDev('checkin'),
    Uint8Array.from([...fVarint(1, 16), ...fVarint(2, T0), ...fBytes(10, fString(1, '04A3B2C1D2E380'))]), 'GP_PROTO_INVALID', 'check_in.method'))
  v.push(badUplink('invalid-nan-value', 'A telemetry value of NaN: values must be finite.', uplinkTopic(SENSOR, 'telemetry'),
    bad({ seq: 83, deviceTimeMs: T0, kind: 'telemetry', telemetry: { readings: [{ metric: 'water_level', value: NaN, unit: 'm' }] } }), 'GP_PROTO_INVALID', 'telemetry.readings[0].value'))
  v.push(badUplink('invalid-telemetry-101', 'One reading over the limit of 100.', uplinkTopic(SENSOR, 'telemetry'),
    bad({ seq: 84, deviceTimeMs: T0, kind: 'telemetry', telemetry: { readings: Array.from({ length: 101 }, () => ({ metric: 'tilt', value: 1 })) } }), 'GP_PROTO_INVALID', 'telemetry.readings'))
  v.push(badUplink('invalid-tag-id-too-long', 'tag_id of 129 bytes (the limit is 128 UTF-8 bytes).', topicDev('checkin'),
    bad({ seq: 17, deviceTimeMs: T0, kind: 'checkin', checkin: { tagId: 'T'.repeat(129), method: 'qr' } }), 'GP_PROTO_INVALID', 'check_in.tag_id'))
  v.push(badUplink('invalid-empty-tag', 'An NFC check-in without a tag id: only GPS check-ins may omit it.', topicDev('checkin'),
    bad({ seq: 18, deviceTimeMs: T0, kind: 'checkin', checkin: { tagId: '', method: 'nfc' } }), 'GP_PROTO_INVALID', 'check_in.tag_id'))
  v.push(badUplink('invalid-gps-without-fix', 'A GPS check-in without a fix.', topicDev('checkin'),
    bad({ seq: 19, deviceTimeMs: T0, kind: 'checkin', checkin: { tagId: '', method: 'gps' } }), 'GP_PROTO_INVALID', 'check_in.fix'))
  {
    // 65,537 bytes: a check-in padded with one unknown field of 65,500 bytes.
    const head = [...fVarint(1, 20), ...fVarint(2, T0), ...fBytes(10, [...fString(1, 'A1'), ...fVarint(2, 1)])]
    const pad = new Array<number>(65_537 - head.length - 5).fill(0x61)
    const bytes = Uint8Array.from([...head, ...fBytes(99, pad)])
    if (bytes.length !== 65_537) throw new Error(`oversize vector is ${bytes.length} bytes`)
    v.push(badUplink('invalid-oversize', 'A payload of 65,537 bytes, one over the limit of 65,536: refused before decoding.', topicDev('checkin'), bytes, 'GP_PROTO_TOO_LARGE'))
  }

  // ---- invalid downlink ------------------------------------------------------------
  v.push(badCommand('cmd-invalid-missing-kind', 'A command with an id but no kind (none of time_sync, config, ping).', Uint8Array.from([...fString(1, 'cmd-x'), ...fVarint(2, T0)]), 'GP_PROTO_INVALID', 'kind'))
  v.push(badCommand('cmd-invalid-nonce-too-long', 'A ping nonce of 33 bytes (at most 32).', encodeCommandUnchecked({ commandId: 'cmd-y', issuedMs: T0, expiresMs: 0, kind: 'ping', ping: { nonceHex: 'ab'.repeat(33) } }), 'GP_PROTO_INVALID', 'ping.nonce'))
  v.push(badCommand('cmd-invalid-report-interval', 'report_interval_s 5 is below the minimum of 10.', encodeCommandUnchecked({ commandId: 'cmd-z', issuedMs: T0, expiresMs: 0, kind: 'config', config: { reportIntervalS: 5 } }), 'GP_PROTO_INVALID', 'config.report_interval_s'))

  return v
}

/** The file content of one vector: stable key order, two-space JSON, trailing newline. */
export function vectorJson(v: Vector): string {
  const ordered: Record<string, unknown> = { name: v.name, description: v.description, direction: v.direction, topic: v.topic, hex: v.hex, serialHex: v.serialHex }
  if (v.message !== undefined) ordered.message = v.message
  if (v.canonicalHex !== undefined) ordered.canonicalHex = v.canonicalHex
  if (v.expectedError !== undefined) ordered.expectedError = v.expectedError
  return JSON.stringify(ordered, null, 2) + '\n'
}

export const VECTORS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'vectors')

function main(): void {
  const check = process.argv.includes('--check')
  const vectors = buildVectors()
  const names = new Set(vectors.map((x) => `${x.name}.json`))
  if (names.size !== vectors.length) throw new Error('duplicate vector names')
  let stale = 0
  if (!check) mkdirSync(VECTORS_DIR, { recursive: true })
  for (const x of vectors) {
    const file = join(VECTORS_DIR, `${x.name}.json`)
    const content = vectorJson(x)
    if (check) {
      if (!existsSync(file) || readFileSync(file, 'utf8') !== content) {
        console.error(`stale: firmware-protocol/vectors/${x.name}.json`)
        stale++
      }
    } else writeFileSync(file, content)
  }
  for (const f of existsSync(VECTORS_DIR) ? readdirSync(VECTORS_DIR) : []) {
    if (!f.endsWith('.json') || names.has(f)) continue
    if (check) {
      console.error(`extra: firmware-protocol/vectors/${f}`)
      stale++
    } else rmSync(join(VECTORS_DIR, f))
  }
  if (stale) process.exitCode = 1
  else console.log(`${vectors.length} vectors ${check ? 'up to date' : 'written'} in firmware-protocol/vectors/`)
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main()
