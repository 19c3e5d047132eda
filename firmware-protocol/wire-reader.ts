// A protobufjs reader that yields 64-bit integers as plain JS numbers and drops
// unknown fields. Scoped to our codec: the global protobufjs configuration
// (util.Long, used by anyone else in the process) is left alone.
//
// Why (bench/protocol.ts): the stock reader builds a LongBits and then a Long
// object for every int64/uint64 (seq, device_time_ms, ...), and codec.ts turned
// each back into a number — about a third of the decode time of a check-in.
//
// Exactness: values up to 2^53-1 convert exactly. Larger magnitudes come out as
// a number ≥ 2^53 (never rounded down below it), which the validation refuses
// as "not an integer within 2^53" naming the field, as before.
import $protobuf from 'protobufjs/minimal.js'

const TWO_32 = 4294967296

function outOfRange(pos: number, len: number): RangeError {
  return new RangeError(`index out of range: ${pos} + 1 > ${len}`)
}

export class WireReader extends $protobuf.BufferReader {
  /** Unknown (future) fields are skipped, not kept (PROTOCOL.md §9). */
  override discardUnknown = true

  /** Reads a varint as two 32-bit halves and returns lo + hi·2^32, signed when asked. */
  private varint64(signed: boolean): number {
    const buf = this.buf
    const len = this.len
    let pos = this.pos
    let lo = 0
    let hi = 0
    let b = 0
    // bytes 1..4: bits 0..27
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= len) throw outOfRange(pos, len)
      b = buf[pos++]!
      lo |= (b & 0x7f) << shift
      if (b < 0x80) {
        this.pos = pos
        return lo >>> 0
      }
    }
    // byte 5: bits 28..34
    if (pos >= len) throw outOfRange(pos, len)
    b = buf[pos++]!
    lo |= (b & 0x7f) << 28
    hi = (b & 0x7f) >>> 4
    if (b >= 0x80) {
      // bytes 6..10: bits 35..63
      let shift = 3
      for (;;) {
        if (pos >= len) throw outOfRange(pos, len)
        b = buf[pos++]!
        hi |= (b & 0x7f) << shift
        if (b < 0x80) break
        shift += 7
        if (shift > 31) throw new Error(`invalid varint encoding at offset ${pos}`)
      }
    }
    this.pos = pos
    lo >>>= 0
    hi >>>= 0
    if (signed && hi & 0x80000000) {
      // two's complement negative: -(~value + 1)
      const nlo = (~lo + 1) >>> 0
      const nhi = (~hi + (nlo === 0 ? 1 : 0)) >>> 0
      return -(nlo + nhi * TWO_32)
    }
    return lo + hi * TWO_32
  }

  // Typed as Long by protobufjs; the generated decoders test `typeof v === "object"`
  // and take numbers as they are, which is what codec.ts wants.
  override int64(): $protobuf.Long {
    return this.varint64(true) as unknown as $protobuf.Long
  }

  override uint64(): $protobuf.Long {
    return this.varint64(false) as unknown as $protobuf.Long
  }
}

/** A reader over `bytes` (copied into a Buffer view, never copied in memory). */
export function wireReader(bytes: Uint8Array): WireReader {
  return new WireReader(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
}
