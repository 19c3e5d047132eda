// Garbage in: the decoders return an error value and the deframer resynchronises.
// Nothing throws, nothing hangs (each input is timed), every valid frame survives
// garbage between frames, and the error counters say what happened.
import t, { type Test } from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Deframer, MAX_FRAME_BYTES, decodeCommand, decodeUplink, encodeFrame, encodeUplink, type Result } from '../../firmware-protocol/index.ts'
import { VECTORS_DIR, type Vector } from '../../firmware-protocol/scripts/gen-vectors.ts'
import { prng, uplink, type Rng } from './fixtures/arbitrary.ts'
import { checkInvariants } from './fixtures/invariants.ts'

const vectors = readdirSync(VECTORS_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(VECTORS_DIR, f), 'utf8')) as Vector)
  .filter((v) => v.hex.length < 40_000) // the 500-item and oversize ones are covered by their own tests
const r = prng(0xfeed)
const randomBytes = (r: Rng, n: number) => Uint8Array.from({ length: n }, () => r.int(0, 255))
const SLOW_MS = 250

function mutate(r: Rng, src: Uint8Array): Uint8Array {
  const b = Uint8Array.from(src)
  switch (r.int(0, 4)) {
    case 0: // bit flips
      for (let k = r.int(1, 4); k > 0 && b.length; k--) b[r.int(0, b.length - 1)]! ^= 1 << r.int(0, 7)
      return b
    case 1: // truncation
      return b.subarray(0, r.int(0, Math.max(0, b.length - 1)))
    case 2: {
      // insertion
      const at = r.int(0, b.length)
      return Uint8Array.from([...b.subarray(0, at), ...randomBytes(r, r.int(1, 8)), ...b.subarray(at)])
    }
    case 3: {
      // deletion
      const at = r.int(0, Math.max(0, b.length - 1))
      return Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + r.int(1, 4))])
    }
    default: // a byte set to an interesting value (varint continuation, wire types, 0)
      if (b.length) b[r.int(0, b.length - 1)] = r.pick([0x00, 0x7f, 0x80, 0xff, 0x0f, 0x0a, 0x12])
      return b
  }
}

function probe(t: Test, label: string, bytes: Uint8Array, stats: { ok: number; err: number; slowest: number }): void {
  for (const [kind, decode] of [
    ['uplink', () => decodeUplink(bytes, { topic: 'gp/v1/gp-dev-0001/up/checkin' })],
    ['command', () => decodeCommand(bytes)],
  ] as const) {
    const started = performance.now()
    let res: Result<unknown>
    try {
      res = decode()
    } catch (err) {
      t.fail(`${label}: decode${kind} threw ${String(err)} on ${Buffer.from(bytes).toString('hex')}`)
      continue
    }
    const ms = performance.now() - started
    stats.slowest = Math.max(stats.slowest, ms)
    if (ms > SLOW_MS) t.fail(`${label}: decode${kind} took ${ms.toFixed(0)} ms`)
    if (res.ok) {
      stats.ok++
      if (kind === 'uplink') {
        const broken = checkInvariants(res.value as never)
        if (broken.length) t.fail(`${label}: accepted an unsound uplink: ${broken.join('; ')}`)
      }
    } else {
      stats.err++
      if (!/^GP_PROTO_/.test(res.error.code) || !res.error.message) t.fail(`${label}: error without code or message`)
    }
  }
}

t.test('random bytes never throw or hang the decoders', async (t) => {
  const stats = { ok: 0, err: 0, slowest: 0 }
  for (let i = 0; i < 4000; i++) probe(t, `random #${i}`, randomBytes(r, r.int(0, i < 3000 ? 64 : 2048)), stats)
})

t.test('deeply nested batches are refused without exhausting the stack', async (t) => {
  const varint = (n: number) => {
    const out: number[] = []
    for (; n > 0x7f; n >>>= 7) out.push((n & 0x7f) | 0x80)
    out.push(n)
    return out
  }
  // Uplink{ batch(14): Batch{ items(1): Uplink{ batch(14): ... } } }, 3000 levels
  let u: number[] = [0x08, 0x01]
  for (let i = 0; i < 3000; i++) {
    const b = [0x0a, ...varint(u.length), ...u]
    u = [0x72, ...varint(b.length), ...b]
  }
  const stats = { ok: 0, err: 0, slowest: 0 }
  probe(t, 'deep nesting', Uint8Array.from(u), stats)
  const res = decodeUplink(Uint8Array.from(u))
  t.equal(res.ok, false)
  if (!res.ok) t.match(res.error.code, /GP_PROTO_(DECODE|INVALID)/, res.error.message)
  t.ok(stats.err > 0, `${stats.err} refused, ${stats.ok} accepted; slowest ${stats.slowest.toFixed(2)} ms`)
})

t.test('mutated vectors never throw, and what is accepted is sound', async (t) => {
  const stats = { ok: 0, err: 0, slowest: 0 }
  for (const v of vectors) {
    const src = Buffer.from(v.hex, 'hex')
    for (let i = 0; i < 150; i++) probe(t, `${v.name} mutation #${i}`, mutate(r, src), stats)
  }
  t.ok(stats.err > 0 && stats.ok > 0, `${stats.err} refused, ${stats.ok} accepted; slowest ${stats.slowest.toFixed(2)} ms`)
})

function chunks(r: Rng, stream: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let at = 0; at < stream.length; ) {
    const n = r.chance(0.1) ? 1 : r.int(1, 700)
    out.push(stream.subarray(at, at + n))
    at += n
  }
  return out
}

t.test('deframer: every valid frame is recovered through garbage between frames', async (t) => {
  const payloads = Array.from({ length: 300 }, () => encodeUplink(uplink(r)))
  const parts: number[] = []
  for (const p of payloads) {
    // garbage of any bytes (zeros included), then a delimiter, then the frame:
    // a sender that starts each frame with 0x00 is immune to earlier line noise.
    if (r.chance(0.7)) parts.push(...randomBytes(r, r.int(1, 300)))
    if (r.chance(0.2)) parts.push(...mutate(r, encodeFrame(payloads[r.int(0, payloads.length - 1)]!)))
    parts.push(0, ...encodeFrame(p))
  }
  const stream = Uint8Array.from(parts)
  const d = new Deframer()
  const got: string[] = []
  const started = performance.now()
  for (const c of chunks(r, stream)) for (const f of d.push(c)) got.push(Buffer.from(f).toString('hex'))
  const ms = performance.now() - started
  const want = payloads.map((p) => Buffer.from(p).toString('hex'))
  // In order; a mutated copy that still passes CRC-32 would be a duplicate of a valid one.
  let i = 0
  for (const g of got) if (g === want[i]) i++
  t.equal(i, want.length, `all ${want.length} frames recovered in order (${got.length} delivered)`)
  const s = d.stats
  t.ok(s.crcErrors + s.cobsErrors + s.runts > 0, `error counters move: ${JSON.stringify(s)}`)
  t.equal(s.bytes, stream.length, 'bytes counted')
  t.equal(s.frames, got.length, 'frames counted')
  t.ok(ms < 5000, `${(stream.length / 1024).toFixed(0)} KiB in ${ms.toFixed(0)} ms`)
})

t.test('deframer: a runaway frame is dropped at the limit and the next frame still arrives', async (t) => {
  const d = new Deframer()
  const errors: string[] = []
  const withCb = new Deframer((kind) => errors.push(kind))
  const payload = encodeUplink(uplink(r))
  const noise = new Uint8Array(MAX_FRAME_BYTES + 10).fill(0x55)
  for (const x of [d, withCb]) {
    t.same(x.push(noise), [])
    t.ok(x.pending <= MAX_FRAME_BYTES, 'memory stays bounded')
    const out = x.push(Uint8Array.from([0, ...encodeFrame(payload)]))
    t.equal(out.length, 1)
    t.equal(x.stats.oversize, 1)
  }
  t.same(errors, ['oversize'])
})

t.test('deframer: random bytes in random chunks never throw', async (t) => {
  const d = new Deframer()
  let delivered = 0
  for (let i = 0; i < 200; i++) for (const c of chunks(r, randomBytes(r, r.int(0, 5000)))) delivered += d.push(c).length
  const s = d.stats
  t.equal(delivered, s.frames)
  t.ok(s.crcErrors + s.cobsErrors + s.runts + s.empty > 0, JSON.stringify(s))
})
