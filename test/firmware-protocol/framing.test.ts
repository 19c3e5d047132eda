// Serial framing (PROTOCOL.md §7): CRC-32 and COBS edge cases, byte-at-a-time delivery.
import t from 'tap'
import { Deframer, FRAME_DELIMITER, cobsDecode, cobsEncode, crc32, encodeFrame } from '../../firmware-protocol/index.ts'
import { prng } from './fixtures/arbitrary.ts'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

t.test('CRC-32/ISO-HDLC check value and known inputs', async (t) => {
  t.equal(crc32(Buffer.from('123456789')), 0xcbf43926)
  t.equal(crc32(new Uint8Array(0)), 0)
  t.equal(crc32(Uint8Array.from([0])), 0xd202ef8d)
  t.equal(crc32(Buffer.from('xx123456789yy'), 2, 11), 0xcbf43926, 'start/end select a range')
})

t.test('COBS: the published examples and the run-length edges', async (t) => {
  // Examples from Cheshire & Baker (1999) / the Wikipedia table.
  const table: Array<[string, string]> = [
    ['00', '0101'],
    ['0000', '010101'],
    ['001100', '01021101'],
    ['11223344', '0511223344'],
    ['11000000', '0211010101'],
    ['11220033', '0311220233'],
  ]
  for (const [raw, enc] of table) {
    t.equal(hex(cobsEncode(Buffer.from(raw, 'hex'))), enc, `encode ${raw}`)
    t.equal(hex(cobsDecode(Buffer.from(enc, 'hex'))!), raw, `decode ${enc}`)
  }
  const run = (n: number, from = 1) => Uint8Array.from({ length: n }, (_, i) => ((from + i - 1) % 255) + 1)
  t.equal(hex(cobsEncode(run(254))), 'ff' + hex(run(254)), '254 non-zero bytes: one full block, no trailing code')
  t.equal(hex(cobsEncode(run(255))), 'ff' + hex(run(254)) + '02' + hex(run(1, 255)), '255 non-zero bytes: a second block')
  t.equal(hex(cobsEncode(Uint8Array.from([...run(254), 0]))), 'ff' + hex(run(254)) + '0101')
  t.equal(hex(cobsEncode(new Uint8Array(0))), '01', 'empty input')
  const r = prng(7)
  for (let i = 0; i < 500; i++) {
    const n = r.int(0, 1200)
    const data = Uint8Array.from({ length: n }, () => (r.chance(0.5) ? 0 : r.int(0, 255)))
    const enc = cobsEncode(data)
    if (enc.includes(0)) t.fail('encoded COBS contains 0x00')
    if (enc.length > n + Math.ceil(n / 254) + 1) t.fail('overhead above ⌈n/254⌉ + 1')
    if (hex(cobsDecode(enc)!) !== hex(data)) t.fail(`round trip #${i}`)
  }
  t.equal(cobsDecode(Uint8Array.from([0x05, 0x11])), undefined, 'code beyond the end')
  t.equal(cobsDecode(Uint8Array.from([0x02, 0x00])), undefined, 'a zero inside')
})

t.test('frame layout: COBS(payload ‖ CRC-32 little-endian) ‖ 00', async (t) => {
  const payload = Buffer.from('123456789')
  const frame = encodeFrame(payload)
  t.equal(hex(frame), '0e' + hex(payload) + '2639f4cb' + '00')
  t.equal(frame[frame.length - 1], FRAME_DELIMITER)
})

t.test('deframer: byte-at-a-time, partial frames, idle fill, runts, bad CRC', async (t) => {
  const a = Buffer.from('0801100252020a00', 'hex')
  const b = Buffer.from('ff'.repeat(300), 'hex')
  const stream = Buffer.concat([Buffer.from([0, 0, 0]), encodeFrame(a), encodeFrame(b)])
  const d = new Deframer()
  const got: string[] = []
  for (const byte of stream) for (const f of d.push(Uint8Array.of(byte))) got.push(hex(f))
  t.same(got, [hex(a), hex(b)])
  t.equal(d.stats.empty, 3, 'leading delimiters are idle fill')
  t.equal(d.pending, 0)

  const half = encodeFrame(a)
  t.same(d.push(half.subarray(0, 5)), [], 'a partial frame waits')
  t.equal(d.pending, 5)
  t.same(d.push(half.subarray(5)).map(hex), [hex(a)])

  const bad = Uint8Array.from(encodeFrame(a))
  bad[3]! ^= 0x01
  const errs: string[] = []
  const e = new Deframer((kind) => errs.push(kind))
  t.same(e.push(Uint8Array.from([...bad, 0x05, 0x11, 0x00, 0x02, 0x01, 0x00, ...encodeFrame(a)])).map(hex), [hex(a)], 'resynchronises on the next frame')
  t.same(errs, ['crc', 'cobs', 'runt'])
  t.match(e.stats, { crcErrors: 1, cobsErrors: 1, runts: 1, frames: 1 })
})
