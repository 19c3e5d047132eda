// Round trip over generated messages: encode → decode gives back the same
// message, for every uplink kind (batches included) and every command kind.
import t from 'tap'
import { isDeepStrictEqual } from 'node:util'
import { decodeCommand, decodeUplink, encodeCommand, encodeUplink, uplinkTopic, type Uplink } from '../../firmware-protocol/index.ts'
import { command, prng, uplink } from './fixtures/arbitrary.ts'
import { checkInvariants } from './fixtures/invariants.ts'

const SEED = 20260115

const idOf = (u: Uplink) => u.deviceId ?? (u.kind === 'batch' ? u.batch.items.find((i) => i.deviceId)?.deviceId : undefined) ?? 'dev-x'

t.test('uplinks of every kind survive encode → decode unchanged', async (t) => {
  const r = prng(SEED)
  const seen = new Set<string>()
  const problems: string[] = []
  let n = 0
  for (; n < 3000 && problems.length < 3; n++) {
    const u = uplink(r)
    seen.add(u.kind)
    if (u.kind === 'batch') for (const it of u.batch.items) seen.add(`batch:${it.kind}`)
    const bytes = encodeUplink(u)
    const d = decodeUplink(bytes, { topic: uplinkTopic(idOf(u), u.kind) })
    if (!d.ok) {
      problems.push(`#${n} ${u.kind}: ${d.error.message}`)
      continue
    }
    if (!isDeepStrictEqual(d.value, u)) t.strictSame(d.value, u, `#${n} ${u.kind} decodes to what was encoded`)
    const broken = checkInvariants(d.value)
    if (broken.length) problems.push(`#${n} invariants: ${broken.join('; ')}`)
    // canonical bytes: re-encoding the decoded value gives the same bytes
    if (!Buffer.from(encodeUplink(d.value)).equals(Buffer.from(bytes))) problems.push(`#${n} ${u.kind} re-encodes differently`)
  }
  t.same(problems, [], `${n} generated uplinks round-trip`)
  for (const k of ['checkin', 'telemetry', 'status', 'alarm', 'ack', 'batch', 'batch:checkin', 'batch:telemetry', 'batch:status', 'batch:alarm', 'batch:ack'])
    t.ok(seen.has(k), `generated ${k}`)
})

t.test('commands of every kind survive encode → decode unchanged', async (t) => {
  const r = prng(SEED + 1)
  const seen = new Set<string>()
  for (let i = 0; i < 2000; i++) {
    const c = command(r)
    seen.add(c.kind)
    const d = decodeCommand(encodeCommand(c))
    if (!d.ok) {
      t.fail(`#${i}: ${d.error.message}`)
      break
    }
    if (!isDeepStrictEqual(d.value, c)) {
      t.strictSame(d.value, c, `#${i} ${c.kind}`)
      break
    }
  }
  t.same([...seen].sort(), ['config', 'ping', 'time_sync'])
})

t.test('decoded values are plain data: JSON round trip is lossless', async (t) => {
  const r = prng(SEED + 2)
  for (let i = 0; i < 200; i++) {
    const u: Uplink = uplink(r)
    const d = decodeUplink(encodeUplink(u))
    if (!d.ok) t.fail(d.error.message)
    else if (!isDeepStrictEqual(JSON.parse(JSON.stringify(d.value)), d.value)) t.strictSame(JSON.parse(JSON.stringify(d.value)), d.value)
  }
})
