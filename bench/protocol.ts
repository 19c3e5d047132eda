// npm run bench:protocol — wire-contract throughput on one core (Node is single-
// threaded here: one process, no workers), plus the comparisons it was chosen by:
//   - static generated code vs protobufjs reflection (protobuf.loadSync of the .proto)
//   - our WireReader (int64 → number) vs the stock reader (int64 → Long object)
// Goal (issue 2): decode + validate one check-in in ≤ 2 µs (≥ 500k msg/s).
//
// The bench imports two internals (generated/ and wire-reader.ts) on purpose: the
// comparison is between layers of the codec, which the public API hides.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import protobuf from 'protobufjs'
import {
  Deframer,
  decodeCommand,
  decodeUplink,
  encodeFrame,
  encodeUplink,
  uplinkTopic,
  type Uplink,
} from '../firmware-protocol/index.ts'
import { gridpatrol } from '../firmware-protocol/generated/gridpatrol.js'
import { wireReader } from '../firmware-protocol/wire-reader.ts'

const root = fileURLToPath(new URL('../firmware-protocol/', import.meta.url))
const vector = (name: string) => JSON.parse(readFileSync(join(root, 'vectors', `${name}.json`), 'utf8')) as { hex: string; topic: string }
const quick = process.argv.includes('--quick')
const ROUND_MS = quick ? 150 : 600
const ROUNDS = quick ? 3 : 5

let sink = 0
/** Best of ROUNDS rounds of ~ROUND_MS each; returns ns per operation. */
function measure(fn: () => unknown): number {
  // warm up (JIT)
  for (let i = 0; i < 20_000; i++) fn()
  let best = Infinity
  for (let r = 0; r < ROUNDS; r++) {
    let n = 0
    const start = process.hrtime.bigint()
    const deadline = start + BigInt(ROUND_MS * 1e6)
    let now = start
    while (now < deadline) {
      for (let i = 0; i < 1000; i++) if (fn()) sink++
      n += 1000
      now = process.hrtime.bigint()
    }
    best = Math.min(best, Number(now - start) / n)
  }
  return best
}

interface Row {
  what: string
  nsPerOp: number
  bytes?: number
  note?: string
}
const rows: Row[] = []
function bench(what: string, fn: () => unknown, bytes?: number, note?: string): number {
  const ns = measure(fn)
  rows.push({ what, nsPerOp: ns, ...(bytes !== undefined ? { bytes } : {}), ...(note ? { note } : {}) })
  return ns
}

// ---- inputs --------------------------------------------------------------------
const nfc = vector('checkin-nfc')
const checkinBytes = Buffer.from(nfc.hex, 'hex')
const checkin = decodeUplink(checkinBytes).ok ? (decodeUplink(checkinBytes) as { value: Uplink }).value : undefined
if (!checkin) throw new Error('checkin-nfc vector does not decode')
const T0 = Date.UTC(2026, 0, 15, 8)
const batch100: Uplink = {
  seq: 0,
  deviceTimeMs: T0,
  kind: 'batch',
  batch: {
    items: Array.from({ length: 100 }, (_, i) => ({
      seq: 5001 + i,
      deviceTimeMs: T0 + i * 60_000,
      kind: 'checkin' as const,
      checkin: { tagId: `04A3B2C1D2E3${(i % 256).toString(16).padStart(2, '0').toUpperCase()}`, method: 'nfc' as const, fix: { lat: 31.2304 + i / 1e4, lon: 121.4737, accuracyM: 5 }, badgeId: 'W-1024' },
    })),
  },
}
const batchBytes = encodeUplink(batch100)
const cmdBytes = Buffer.from(vector('cmd-config').hex, 'hex')
const topic = uplinkTopic('gp-dev-0001', 'checkin')

// A serial stream of 1,000 check-in frames.
const frames = Buffer.concat(Array.from({ length: 1000 }, () => encodeFrame(checkinBytes)))

// protobufjs reflection, loaded from the same .proto files.
const reflection = new protobuf.Root()
reflection.resolvePath = (_origin, target) => join(root, 'proto', target)
reflection.loadSync(['gridpatrol/v1/uplink.proto', 'gridpatrol/v1/downlink.proto'], { keepCase: false })
const ReflUplink = reflection.lookupType('gridpatrol.v1.Uplink')
const StaticUplink = gridpatrol.v1.Uplink

// ---- the codec (public API) --------------------------------------------------------
const nsCheckin = bench('decodeUplink check-in + validate + topic/identity check', () => decodeUplink(checkinBytes, { topic }).ok, checkinBytes.length)
bench('decodeUplink check-in + validate (no topic)', () => decodeUplink(checkinBytes).ok, checkinBytes.length)
const nsBatch = bench('decodeUplink batch of 100 check-ins', () => decodeUplink(batchBytes, { topic: uplinkTopic('gp-dev-0001', 'batch') }).ok, batchBytes.length)
bench('decodeCommand config', () => decodeCommand(cmdBytes).ok, cmdBytes.length)
bench('encodeUplink check-in (validate + encode)', () => encodeUplink(checkin).length, checkinBytes.length)
bench('encodeUplink batch of 100 check-ins', () => encodeUplink(batch100).length, batchBytes.length)
bench('encodeFrame check-in (CRC-32 + COBS)', () => encodeFrame(checkinBytes).length, checkinBytes.length)
const deframer = new Deframer()
const nsDeframe = bench('Deframer.push 1,000 check-in frames', () => deframer.push(frames).length, frames.length)

// ---- comparisons: raw protobuf decode only (no conversion, no validation) ------------
const nsStatic = bench('static code, stock reader (Long objects)', () => StaticUplink.decode(checkinBytes).seq, checkinBytes.length, 'raw decode')
const nsWire = bench('static code, WireReader (numbers)', () => StaticUplink.decode(wireReader(checkinBytes)).seq, checkinBytes.length, 'raw decode — what the codec uses')
const nsRefl = bench('reflection (protobuf.loadSync), stock reader', () => (ReflUplink.decode(checkinBytes) as unknown as { seq: unknown }).seq, checkinBytes.length, 'raw decode')
const nsReflWire = bench('reflection, WireReader', () => (ReflUplink.decode(wireReader(checkinBytes)) as unknown as { seq: unknown }).seq, checkinBytes.length, 'raw decode')
const nsStaticBatch = bench('static code batch of 100, WireReader', () => StaticUplink.decode(wireReader(batchBytes)).body, batchBytes.length, 'raw decode')
const nsReflBatch = bench('reflection batch of 100, WireReader', () => (ReflUplink.decode(wireReader(batchBytes)) as unknown as { body: unknown }).body, batchBytes.length, 'raw decode')

// ---- report ------------------------------------------------------------------------------
const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
console.log(`gridpatrol protocol bench — node ${process.version}, ${process.arch}, one core${quick ? ' (quick)' : ''}, best of ${ROUNDS} × ${ROUND_MS} ms`)
console.log('')
console.log('| operation | µs/op | ops/s | MB/s | note |')
console.log('|---|---:|---:|---:|---|')
for (const r of rows) {
  const mbs = r.bytes !== undefined ? fmt((r.bytes / r.nsPerOp) * 1e3, 1) : ''
  console.log(`| ${r.what} | ${fmt(r.nsPerOp / 1e3, 3)} | ${fmt(1e9 / r.nsPerOp)} | ${mbs} | ${r.note ?? ''} |`)
}
console.log('')
console.log(`check-in decode: ${fmt(nsCheckin / 1e3, 3)} µs = ${fmt(1e9 / nsCheckin)} msg/s (goal ≤ 2 µs, ≥ 500,000 msg/s): ${nsCheckin <= 2000 ? 'MET' : 'NOT MET'}`)
console.log(`batch of 100: ${fmt(nsBatch / 1e3, 1)} µs = ${fmt((100 * 1e9) / nsBatch)} items/s`)
console.log(`deframe: ${fmt((frames.length / nsDeframe) * 1e3, 1)} MB/s, ${fmt((1000 * 1e9) / nsDeframe)} frames/s`)
console.log(`reflection time / static time (raw decode): check-in ${fmt(nsReflWire / nsWire, 2)} (WireReader), ${fmt(nsRefl / nsStatic, 2)} (stock reader); batch ${fmt(nsReflBatch / nsStaticBatch, 2)} — static ${nsWire < nsReflWire ? 'faster' : 'not faster'}`)
console.log(`WireReader vs stock reader (static code): ${fmt(nsStatic / nsWire, 2)}× faster raw decode (no Long allocation)`)
if (sink < 0) console.log(sink)
