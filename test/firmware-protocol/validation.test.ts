// Every validation rule names the field it enforces (PROTOCOL.md §4), on decode
// and on encode alike, and decoding never accepts what encoding refuses.
import t from 'tap'
import {
  ProtocolError,
  decodeCommand,
  decodeUplink,
  encodeCommand,
  encodeCommandUnchecked,
  encodeUplink,
  encodeUplinkUnchecked,
  checkDeviceClock,
  type Command,
  type Uplink,
} from '../../firmware-protocol/index.ts'

const T = Date.UTC(2026, 0, 15, 8)
const ci = (checkin: Partial<Extract<Uplink, { kind: 'checkin' }>['checkin']>, head: Partial<Uplink> = {}): Uplink =>
  ({ seq: 1, deviceTimeMs: T, kind: 'checkin', ...head, checkin: { tagId: 'A1', method: 'nfc', ...checkin } }) as Uplink
const item = (seq: number, extra: Partial<Uplink> = {}): Uplink => ({ ...ci({}), seq, ...extra }) as Uplink

const cases: Array<[string, Uplink, string, string?]> = [
  ['seq 0', { ...ci({}), seq: 0 }, 'seq'],
  ['seq negative', { ...ci({}), seq: -1 }, 'seq'],
  ['seq fractional', { ...ci({}), seq: 1.5 }, 'seq'],
  ['seq ≥ 2^53', { ...ci({}), seq: 2 ** 53 }, 'seq'],
  ['device time 0', { ...ci({}), deviceTimeMs: 0 }, 'device_time_ms'],
  ['device time negative', { ...ci({}), deviceTimeMs: -5 }, 'device_time_ms'],
  ['bad device id', { ...ci({}), deviceId: 'a/b' }, 'device_id'],
  ['no tag id', ci({ tagId: '' }), 'check_in.tag_id'],
  ['tag id 129 bytes', ci({ tagId: 'x'.repeat(129) }), 'check_in.tag_id'],
  ['tag id 43 CJK chars = 129 bytes', ci({ tagId: '网'.repeat(43) }), 'check_in.tag_id'],
  ['tag id with NUL', ci({ tagId: 'a\u0000b' }), 'check_in.tag_id'],
  ['gps without fix', ci({ tagId: '', method: 'gps' }), 'check_in.fix'],
  ['lat 90.0001', ci({ fix: { lat: 90.0001, lon: 0 } }), 'check_in.fix.lat'],
  ['lat -91', ci({ fix: { lat: -91, lon: 0 } }), 'check_in.fix.lat'],
  ['lat NaN', ci({ fix: { lat: NaN, lon: 0 } }), 'check_in.fix.lat'],
  ['lon 180.5', ci({ fix: { lat: 0, lon: 180.5 } }), 'check_in.fix.lon'],
  ['lon -Infinity', ci({ fix: { lat: 0, lon: -Infinity } }), 'check_in.fix.lon'],
  ['accuracy negative', ci({ fix: { lat: 0, lon: 0, accuracyM: -1 } }), 'check_in.fix.accuracy_m'],
  ['altitude NaN', ci({ fix: { lat: 0, lon: 0, altitudeM: NaN } }), 'check_in.fix.altitude_m'],
  ['accuracy NaN', ci({ fix: { lat: 0, lon: 0, accuracyM: NaN } }), 'check_in.fix.accuracy_m'],
  ['fix time negative', ci({ fix: { lat: 0, lon: 0, fixTimeMs: -1 } }), 'check_in.fix.fix_time_ms'],
  ['badge 65 chars', ci({ badgeId: '员'.repeat(65) }), 'check_in.badge_id'],
  ['battery 101', ci({ batteryPct: 101 }), 'check_in.battery_pct'],
  ['no readings', { seq: 1, deviceTimeMs: T, kind: 'telemetry', telemetry: { readings: [] } }, 'telemetry.readings'],
  ['bad metric', { seq: 1, deviceTimeMs: T, kind: 'telemetry', telemetry: { readings: [{ metric: 'Water Level', value: 1 }] } }, 'telemetry.readings[0].metric'],
  ['value Infinity', { seq: 1, deviceTimeMs: T, kind: 'telemetry', telemetry: { readings: [{ metric: 'a', value: 1 }, { metric: 'b', value: Infinity }] } }, 'telemetry.readings[1].value'],
  ['unit 17 chars', { seq: 1, deviceTimeMs: T, kind: 'telemetry', telemetry: { readings: [{ metric: 'a', value: 1, unit: 'u'.repeat(17) }] } }, 'telemetry.readings[0].unit'],
  ['signal +1 dBm', { seq: 1, deviceTimeMs: T, kind: 'status', status: { signalDbm: 1 } }, 'status.signal_dbm'],
  ['signal -151 dBm', { seq: 1, deviceTimeMs: T, kind: 'status', status: { signalDbm: -151 } }, 'status.signal_dbm'],
  ['firmware 33 chars', { seq: 1, deviceTimeMs: T, kind: 'status', status: { firmwareVersion: 'v'.repeat(33) } }, 'status.firmware_version'],
  ['battery mV negative', { seq: 1, deviceTimeMs: T, kind: 'status', status: { batteryMv: -1 } }, 'status.battery_mv'],
  ['buffered count over uint32', { seq: 1, deviceTimeMs: T, kind: 'status', status: { bufferedCount: 2 ** 32 } }, 'status.buffered_count'],
  ['status fix lat', { seq: 1, deviceTimeMs: T, kind: 'status', status: { fix: { lat: 100, lon: 0 } } }, 'status.fix.lat'],
  ['alarm detail 257', { seq: 1, deviceTimeMs: T, kind: 'alarm', alarm: { kind: 'sos', detail: 'd'.repeat(257) } }, 'alarm.detail'],
  ['alarm fix lon', { seq: 1, deviceTimeMs: T, kind: 'alarm', alarm: { kind: 'sos', fix: { lat: 0, lon: 200 } } }, 'alarm.fix.lon'],
  ['ack no command id', { seq: 1, deviceTimeMs: T, kind: 'ack', ack: { commandId: '', status: 'ok' } }, 'command_ack.command_id'],
  ['ack nonce 33 bytes', { seq: 1, deviceTimeMs: T, kind: 'ack', ack: { commandId: 'c', status: 'ok', nonceHex: 'aa'.repeat(33) } }, 'command_ack.nonce'],
  ['batch seq 1', { seq: 1, deviceTimeMs: T, kind: 'batch', batch: { items: [item(1)] } }, 'seq'],
  ['batch empty', { seq: 0, deviceTimeMs: T, kind: 'batch', batch: { items: [] } }, 'batch.items'],
  ['batch 501', { seq: 0, deviceTimeMs: T, kind: 'batch', batch: { items: Array.from({ length: 501 }, (_, i) => item(i + 1)) } }, 'batch.items'],
  ['batch duplicate seq', { seq: 0, deviceTimeMs: T, kind: 'batch', batch: { items: [item(3), item(3)] } }, 'batch.items[1].seq'],
  ['batch item seq 0', { seq: 0, deviceTimeMs: T, kind: 'batch', batch: { items: [item(0)] } }, 'batch.items[0].seq'],
  ['batch item without time', { seq: 0, deviceTimeMs: T, kind: 'batch', batch: { items: [item(1), item(2, { deviceTimeMs: 0 })] } }, 'batch.items[1].device_time_ms'],
  ['batch item bad lat', { seq: 0, deviceTimeMs: T, kind: 'batch', batch: { items: [item(1), ci({ fix: { lat: 95, lon: 0 } }, { seq: 2 })] } }, 'batch.items[1].check_in.fix.lat'],
  ['nested batch', { seq: 0, deviceTimeMs: T, kind: 'batch', batch: { items: [{ seq: 0, deviceTimeMs: T, kind: 'batch', batch: { items: [item(1)] } }] } }, 'batch.items[0].batch'],
  ['batch item claims another device', { seq: 0, deviceTimeMs: T, deviceId: 'd1', kind: 'batch', batch: { items: [item(1, { deviceId: 'd2' })] } }, 'batch.items[0].device_id', 'GP_PROTO_IDENTITY'],
]

t.test('each broken rule is refused naming its field, on encode and on decode', async (t) => {
  for (const [name, u, field, code = 'GP_PROTO_INVALID'] of cases) {
    const thrown = (() => {
      try {
        encodeUplink(u)
      } catch (e) {
        return e
      }
      return undefined
    })()
    t.ok(thrown instanceof ProtocolError, `${name}: encode throws a ProtocolError`)
    t.same(thrown instanceof ProtocolError && { code: thrown.code, field: thrown.field }, { code, field }, `${name}: encode names ${field}`)
    // NaN/Infinity/fractions cannot all be put on the wire; where they can, decoding refuses them too.
    let bytes: Uint8Array
    try {
      bytes = encodeUplinkUnchecked(u)
    } catch {
      continue
    }
    const d = decodeUplink(bytes)
    if (d.ok) {
      // a fractional seq or a uint32 overflow is cut by the writer: the wire holds another, valid message
      t.ok(['seq fractional', 'buffered count over uint32'].includes(name), `${name}: decode accepted only where the wire cannot carry the fault`)
      continue
    }
    t.same({ code: d.error.code, field: d.error.field }, { code, field }, `${name}: decode names ${field} (${d.error.message})`)
    t.ok(d.error.message.includes(field), `${name}: the message names the field`)
  }
})

t.test('commands: each broken rule names its field', async (t) => {
  const base = { commandId: 'c1', issuedMs: T, expiresMs: 0 }
  const cmds: Array<[string, Command, string]> = [
    ['no id', { ...base, commandId: '', kind: 'ping', ping: { nonceHex: '' } }, 'command_id'],
    ['id 65 chars', { ...base, commandId: 'c'.repeat(65), kind: 'ping', ping: { nonceHex: '' } }, 'command_id'],
    ['expires negative', { ...base, expiresMs: -1, kind: 'ping', ping: { nonceHex: '' } }, 'expires_ms'],
    ['time sync t0 0', { ...base, kind: 'time_sync', timeSync: { serverTimeMs: 0 } }, 'time_sync.server_time_ms'],
    ['nonce odd hex', { ...base, kind: 'ping', ping: { nonceHex: 'abc' } }, 'ping.nonce'],
    ['nonce upper-case hex', { ...base, kind: 'ping', ping: { nonceHex: 'AB' } }, 'ping.nonce'],
    ['report interval 9', { ...base, kind: 'config', config: { reportIntervalS: 9 } }, 'config.report_interval_s'],
    ['heartbeat 86401', { ...base, kind: 'config', config: { heartbeatIntervalS: 86_401 } }, 'config.heartbeat_interval_s'],
    ['low battery 0', { ...base, kind: 'config', config: { lowBatteryPct: 0 } }, 'config.low_battery_pct'],
    ['33 extra keys', { ...base, kind: 'config', config: { extra: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) } }, 'config.extra'],
    ['extra key with space', { ...base, kind: 'config', config: { extra: { 'a b': 'v' } } }, 'config.extra["a b"]'],
    ['extra value 257 chars', { ...base, kind: 'config', config: { extra: { k: 'v'.repeat(257) } } }, 'config.extra["k"]'],
  ]
  for (const [name, c, field] of cmds) {
    t.throws(() => encodeCommand(c), { code: 'GP_PROTO_INVALID', field }, `${name}: encode names ${field}`)
    if (name.startsWith('nonce')) continue // hex that Buffer cannot carry
    const d = decodeCommand(encodeCommandUnchecked(c))
    t.same(d.ok ? 'ok' : { code: d.error.code, field: d.error.field }, { code: 'GP_PROTO_INVALID', field }, `${name}: decode names ${field}`)
  }
})

t.test('limits are inclusive: the largest allowed values pass', async (t) => {
  const ok: Uplink[] = [
    ci({ tagId: 'x'.repeat(128) }),
    ci({ tagId: '网'.repeat(42) + 'xx' }), // 128 bytes
    ci({ badgeId: '😀'.repeat(64) }), // 64 code points, 128 UTF-16 units
    ci({ fix: { lat: -90, lon: -180 } }),
    ci({ fix: { lat: 90, lon: 180 } }),
    ci({ batteryPct: 0 }),
    ci({ batteryPct: 100 }),
    { ...ci({}), seq: Number.MAX_SAFE_INTEGER, deviceTimeMs: Number.MAX_SAFE_INTEGER },
    { seq: 1, deviceTimeMs: 1, kind: 'status', status: { signalDbm: -150, firmwareVersion: 'v'.repeat(32) } },
    { seq: 1, deviceTimeMs: T, kind: 'ack', ack: { commandId: 'c'.repeat(64), status: 'expired', nonceHex: 'ab'.repeat(32), detail: '细'.repeat(256) } },
  ]
  for (const u of ok) {
    const d = decodeUplink(encodeUplink(u))
    t.ok(d.ok, d.ok ? 'ok' : d.error.message)
  }
})

t.test('topic context: scheme, kind and identity', async (t) => {
  const bytes = encodeUplink({ ...ci({}), deviceId: 'd1' })
  const code = (topic: string) => {
    const r = decodeUplink(bytes, { topic })
    return r.ok ? 'ok' : r.error.code
  }
  t.equal(code('gp/v1/d1/up/checkin'), 'ok')
  t.equal(code('gp/v1/d2/up/checkin'), 'GP_PROTO_IDENTITY')
  t.equal(code('gp/v1/d1/up/status'), 'GP_PROTO_TOPIC_MISMATCH')
  t.equal(code('gp/v1/d1/down/cmd'), 'GP_PROTO_TOPIC')
  t.equal(code('gp/v1/d1/presence'), 'GP_PROTO_TOPIC')
  t.equal(code('gp/v9/d1/up/checkin'), 'GP_PROTO_TOPIC')
  t.equal(code('nonsense'), 'GP_PROTO_TOPIC')
  // no device id in the payload: any topic device is fine
  t.ok(decodeUplink(encodeUplink(ci({})), { topic: 'gp/v1/zz/up/checkin' }).ok)
})

t.test('clock plausibility is a verdict, not a rejection', async (t) => {
  const now = Date.UTC(2026, 0, 15)
  t.equal(checkDeviceClock(now, now), 'ok')
  t.equal(checkDeviceClock(now + 5 * 60_000, now), 'ok', 'exactly 5 min ahead is tolerated')
  t.equal(checkDeviceClock(now + 5 * 60_000 + 1, now), 'future')
  t.equal(checkDeviceClock(Date.UTC(2019, 11, 31, 23, 59, 59), now), 'ancient')
  t.equal(checkDeviceClock(Date.UTC(2020, 0, 1), now), 'ok')
  t.ok(decodeUplink(encodeUplink({ ...ci({}), deviceTimeMs: 1000 })).ok, 'an ancient device time still decodes (flagged downstream)')
})
