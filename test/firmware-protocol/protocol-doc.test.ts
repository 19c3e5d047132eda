// PROTOCOL.md stays in step with the contract: every .proto field (number, name,
// type), every enum value, every error code, every limit and every vector appear.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import protobuf from 'protobufjs'
import * as contract from '../../firmware-protocol/index.ts'

const root = fileURLToPath(new URL('../../firmware-protocol/', import.meta.url))
const doc = readFileSync(join(root, 'PROTOCOL.md'), 'utf8')
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\<>]/g, '\\$&')

const proto = new protobuf.Root()
proto.resolvePath = (_origin, target) => join(root, 'proto', target)
proto.loadSync(['gridpatrol/v1/uplink.proto', 'gridpatrol/v1/downlink.proto'], { keepCase: true })
const ns = proto.lookup('gridpatrol.v1') as protobuf.Namespace

/** The section of PROTOCOL.md under the heading naming `name`, up to the next heading. */
function section(name: string): string | undefined {
  const m = new RegExp(`^#{3,4} (?:\\d+(?:\\.\\d+)* )?${name}\\b.*$`, 'm').exec(doc)
  if (!m) return undefined
  const rest = doc.slice(m.index + m[0].length)
  const next = /^#{2,4} /m.exec(rest)
  return next ? rest.slice(0, next.index) : rest
}

function typeOf(f: protobuf.Field): string {
  if (f instanceof protobuf.MapField) return `map<${f.keyType}, ${f.type}>`
  const base = f.type
  if (f.repeated) return `repeated ${base}`
  return f.options?.proto3_optional || (f.partOf && f.partOf.name.startsWith('_')) ? `optional ${base}` : base
}

t.test('every message field is in a table of its section: number, name, type', async (t) => {
  for (const type of ns.nestedArray.filter((n): n is protobuf.Type => n instanceof protobuf.Type)) {
    const body = type.name === 'Uplink' ? section('Uplink') : type.name === 'Command' ? section('Command') : section(type.name)
    if (!t.ok(body, `PROTOCOL.md has a section for ${type.name}`)) continue
    for (const f of type.fieldsArray) {
      const row = new RegExp(`^\\| ${f.id} \\| \`${f.name}\` \\| ${escape(typeOf(f))} \\|`, 'm')
      t.match(body!, row, `${type.name}.${f.name} = ${f.id} (${typeOf(f)})`)
    }
  }
})

t.test('every enum value is listed with its number', async (t) => {
  for (const e of ns.nestedArray.filter((n): n is protobuf.Enum => n instanceof protobuf.Enum)) {
    const body = section(e.name)
    if (!t.ok(body, `PROTOCOL.md has a section for ${e.name}`)) continue
    for (const [name, value] of Object.entries(e.values)) t.match(body!, new RegExp(`^\\| ${value} \\| \`${name}\` \\|`, 'm'), `${e.name}.${name} = ${value}`)
  }
})

t.test('error codes, limits and vectors are all documented', async (t) => {
  for (const code of ['GP_PROTO_TOO_LARGE', 'GP_PROTO_DECODE', 'GP_PROTO_INVALID', 'GP_PROTO_TOPIC_MISMATCH', 'GP_PROTO_IDENTITY', 'GP_PROTO_TOPIC'])
    t.match(doc, new RegExp(`\\| \`${code}\` \\|`), code)
  const errorsTs = readFileSync(join(root, 'errors.ts'), 'utf8')
  for (const [, code] of errorsTs.matchAll(/'(GP_PROTO_[A-Z_]+)'/g)) t.ok(doc.includes(`\`${code}\``), `${code} from errors.ts`)
  const limits: Array<[string, number]> = [
    ['MAX_PAYLOAD_BYTES', contract.MAX_PAYLOAD_BYTES],
    ['MAX_BATCH_ITEMS', contract.MAX_BATCH_ITEMS],
    ['MAX_READINGS', contract.MAX_READINGS],
    ['MAX_TAG_ID_BYTES', contract.MAX_TAG_ID_BYTES],
    ['MAX_BADGE_ID_CHARS', contract.MAX_BADGE_ID_CHARS],
    ['MAX_DETAIL_CHARS', contract.MAX_DETAIL_CHARS],
    ['MAX_FIRMWARE_CHARS', contract.MAX_FIRMWARE_CHARS],
    ['MAX_UNIT_CHARS', contract.MAX_UNIT_CHARS],
    ['MAX_COMMAND_ID_CHARS', contract.MAX_COMMAND_ID_CHARS],
    ['MAX_NONCE_BYTES', contract.MAX_NONCE_BYTES],
    ['MAX_CONFIG_EXTRA_KEYS', contract.MAX_CONFIG_EXTRA_KEYS],
    ['MAX_CONFIG_EXTRA_VALUE_CHARS', contract.MAX_CONFIG_EXTRA_VALUE_CHARS],
  ]
  for (const [name, value] of limits) {
    const row = doc.split('\n').find((l) => l.includes(`\`${name}\``))
    t.ok(row && row.replace(/,/g, '').includes(String(value)), `${name} = ${value} in the limits table`)
  }
  t.ok(doc.includes('2020-01-01T00:00:00Z') && contract.CLOCK_EPOCH_FLOOR_MS === Date.UTC(2020, 0, 1), 'clock floor')
  t.ok(doc.includes('5 minutes in the future') && contract.CLOCK_FUTURE_TOLERANCE_MS === 300_000, 'clock tolerance')
  for (const f of readdirSync(join(root, 'vectors')).filter((x) => x.endsWith('.json'))) t.ok(doc.includes(`\`${f.replace(/\.json$/, '')}\``), `vector ${f} is listed`)
})

t.test('the worked serial example is a real vector', async (t) => {
  const v = JSON.parse(readFileSync(join(root, 'vectors', 'status-zero-battery.json'), 'utf8')) as { hex: string; serialHex: string }
  t.ok(doc.includes(v.serialHex), 'serialHex quoted')
  t.ok(doc.includes(`0x${contract.crc32(Buffer.from(v.hex, 'hex')).toString(16).toUpperCase()}`), 'CRC quoted')
})
