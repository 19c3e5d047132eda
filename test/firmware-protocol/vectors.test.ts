// Every golden vector, both directions, plus staleness: the committed files are
// exactly what scripts/gen-vectors.ts and the codec produce today.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import {
  Deframer,
  MAX_PAYLOAD_BYTES,
  decodeCommand,
  decodeUplink,
  encodeCommand,
  encodeFrame,
  encodeUplink,
  parseTopic,
  type Command,
  type Uplink,
} from '../../firmware-protocol/index.ts'
import { VECTORS_DIR, buildVectors, vectorJson, type Vector } from '../../firmware-protocol/scripts/gen-vectors.ts'
import { checkInvariants } from './fixtures/invariants.ts'

const files = readdirSync(VECTORS_DIR).filter((f) => f.endsWith('.json')).sort()
const vectors: Vector[] = files.map((f) => JSON.parse(readFileSync(join(VECTORS_DIR, f), 'utf8')) as Vector)
const bytes = (hex: string) => Buffer.from(hex, 'hex')

t.test('the vector set is complete', async (t) => {
  t.ok(vectors.length >= 24, `${vectors.length} vectors`)
  const valid = vectors.filter((v) => v.expectedError === undefined)
  const kinds = new Set(valid.filter((v) => v.direction === 'uplink').map((v) => (v.message as Uplink).kind))
  t.same([...kinds].sort(), ['ack', 'alarm', 'batch', 'checkin', 'status', 'telemetry'], 'every uplink kind')
  const commands = new Set(valid.filter((v) => v.direction === 'downlink').map((v) => (v.message as Command).kind))
  t.same([...commands].sort(), ['config', 'ping', 'time_sync'], 'every command kind')
  const uplinks = valid.filter((v) => v.direction === 'uplink').map((v) => v.message as Uplink)
  const alarms = new Set(uplinks.flatMap((u) => (u.kind === 'alarm' ? [u.alarm.kind] : [])))
  t.same([...alarms].sort(), ['low_battery', 'man_down', 'sos', 'tamper'], 'every alarm kind')
  const acks = new Set(uplinks.flatMap((u) => (u.kind === 'ack' ? [u.ack.status] : [])))
  t.same([...acks].sort(), ['expired', 'ok', 'rejected', 'unsupported'], 'every ack status')
  const methods = new Set(uplinks.flatMap((u) => (u.kind === 'checkin' ? [u.checkin.method] : [])))
  t.same([...methods].sort(), ['gps', 'ibutton', 'nfc', 'qr', 'rfid'], 'every read method')
  t.ok(uplinks.some((u) => u.kind === 'batch' && u.batch.items.length === 500), 'a 500-item batch')
  t.ok(vectors.some((v) => v.canonicalHex !== undefined), 'a vector with unknown fields')
  t.ok(vectors.filter((v) => v.expectedError).length >= 15, 'invalid vectors')
  for (const [i, v] of vectors.entries()) t.equal(`${v.name}.json`, files[i], `${files[i]} is named after its vector`)
})

t.test('committed vectors are what gen-vectors.ts produces (not stale)', async (t) => {
  const built = buildVectors()
  t.same(built.map((v) => `${v.name}.json`).sort(), files, 'same set of files')
  for (const v of built) {
    const file = join(VECTORS_DIR, `${v.name}.json`)
    let committed = ''
    try {
      committed = readFileSync(file, 'utf8')
    } catch {
      /* reported below */
    }
    if (committed !== vectorJson(v)) t.fail(`${v.name}.json is stale: run npx tsx firmware-protocol/scripts/gen-vectors.ts`)
  }
})

t.test('valid vectors: decode(hex) = message, encode(message) = hex', async (t) => {
  for (const v of vectors.filter((x) => x.expectedError === undefined)) {
    t.ok(v.message !== undefined, `${v.name} has a message`)
    if (v.direction === 'uplink') {
      const d = decodeUplink(bytes(v.hex), { topic: v.topic })
      if (!d.ok) {
        t.fail(`${v.name}: ${d.error.message}`)
        continue
      }
      if (!t.ok(isDeepStrictEqual(d.value, v.message), `${v.name}: decodes to its message`)) t.strictSame(d.value, v.message)
      t.same(checkInvariants(d.value), [], `${v.name}: invariants hold`)
      const again = Buffer.from(encodeUplink(v.message as Uplink)).toString('hex')
      t.equal(again, v.canonicalHex ?? v.hex, `${v.name}: encodes to its ${v.canonicalHex ? 'canonical ' : ''}hex`)
      const topic = parseTopic(v.topic)
      t.ok(topic.ok && topic.direction === 'up' && topic.kind === d.value.kind, `${v.name}: topic matches the kind`)
    } else {
      const d = decodeCommand(bytes(v.hex))
      if (!d.ok) {
        t.fail(`${v.name}: ${d.error.message}`)
        continue
      }
      if (!t.ok(isDeepStrictEqual(d.value, v.message), `${v.name}: decodes to its message`)) t.strictSame(d.value, v.message)
      t.equal(Buffer.from(encodeCommand(v.message as Command)).toString('hex'), v.hex, `${v.name}: encodes to its hex`)
      const topic = parseTopic(v.topic)
      t.ok(topic.ok && topic.direction === 'down', `${v.name}: a downlink topic`)
    }
  }
})

t.test('invalid vectors fail with the expected code and field', async (t) => {
  for (const v of vectors.filter((x) => x.expectedError !== undefined)) {
    t.equal(v.message, undefined, `${v.name}: no message`)
    const r = v.direction === 'uplink' ? decodeUplink(bytes(v.hex), { topic: v.topic }) : decodeCommand(bytes(v.hex))
    if (r.ok) {
      t.fail(`${v.name}: decoded, expected ${v.expectedError!.code}`)
      continue
    }
    t.same({ code: r.error.code, field: r.error.field }, { code: v.expectedError!.code, field: v.expectedError!.field }, `${v.name}: ${r.error.message}`)
    t.ok(r.error.message.length > 0, `${v.name}: has a message`)
  }
})

t.test('serialHex is one frame that deframes to hex', async (t) => {
  for (const v of vectors) {
    t.equal(Buffer.from(encodeFrame(bytes(v.hex))).toString('hex'), v.serialHex, `${v.name}: encodeFrame(hex) = serialHex`)
    const serial = bytes(v.serialHex)
    t.equal(serial[serial.length - 1], 0, `${v.name}: ends with the 0x00 delimiter`)
    t.equal(serial.subarray(0, -1).indexOf(0), -1, `${v.name}: no 0x00 inside the frame`)
    const d = new Deframer()
    const out = d.push(serial)
    t.equal(out.length, 1, `${v.name}: one frame`)
    t.equal(Buffer.from(out[0] ?? []).toString('hex'), v.hex, `${v.name}: payload recovered`)
  }
  // Over serial, an oversize payload is still one frame; the decoder refuses it
  // exactly as over MQTT (PROTOCOL.md §8).
  const over = vectors.find((v) => v.name === 'invalid-oversize')!
  const [payload] = new Deframer().push(bytes(over.serialHex))
  t.ok(payload && payload.length > MAX_PAYLOAD_BYTES)
  const r = decodeUplink(payload!, { topic: over.topic })
  t.equal(r.ok ? undefined : r.error.code, 'GP_PROTO_TOO_LARGE')
})
