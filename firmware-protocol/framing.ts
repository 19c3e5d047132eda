// Serial framing (PROTOCOL.md §7) for docking cradles and RS-485 sensors:
//
//   frame = COBS( payload ‖ crc32le(payload) ) ‖ 0x00
//
// COBS removes every 0x00 from the body so 0x00 only ever ends a frame: a
// receiver that joins mid-stream or loses bytes resynchronises at the next 0x00.
// The deframer takes bytes in and gives complete payloads out; partial frames
// wait for more bytes, bad frames are counted and skipped, nothing throws.
import { crc32 } from './crc.ts'
import { MAX_PAYLOAD_BYTES } from './limits.ts'

export const FRAME_DELIMITER = 0x00
export const CRC_BYTES = 4
/** Largest encoded frame body (payload + CRC + COBS overhead), excluding the delimiter. */
export const MAX_FRAME_BYTES = MAX_PAYLOAD_BYTES + CRC_BYTES + Math.ceil((MAX_PAYLOAD_BYTES + CRC_BYTES) / 254) + 1

/** COBS-encodes `data` (no delimiter appended). */
export function cobsEncode(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + Math.ceil(data.length / 254) + 1)
  let codeAt = 0
  let o = 1
  let code = 1
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!
    if (b === 0) {
      out[codeAt] = code
      codeAt = o++
      code = 1
    } else {
      out[o++] = b
      // A full block (254 data bytes) starts a new one only when more data follows:
      // the canonical encoding (Cheshire & Baker; cobs-c) has no trailing 0x01 then.
      if (++code === 0xff && i < data.length - 1) {
        out[codeAt] = code
        codeAt = o++
        code = 1
      }
    }
  }
  out[codeAt] = code
  return out.subarray(0, o)
}

/** COBS-decodes one frame body (without its delimiter); undefined when malformed. */
export function cobsDecode(body: Uint8Array): Uint8Array | undefined {
  const out = new Uint8Array(body.length)
  const n = cobsDecodeInto(body, body.length, out)
  return n < 0 ? undefined : out.subarray(0, n)
}

/** COBS-decodes body[0, len) into `out` (at least len bytes); the decoded length, or -1 when malformed. */
function cobsDecodeInto(body: Uint8Array, len: number, out: Uint8Array): number {
  let o = 0
  let i = 0
  while (i < len) {
    const code = body[i++]!
    if (code === 0) return -1
    const end = i + code - 1
    if (end > len) return -1
    while (i < end) {
      const b = body[i++]!
      if (b === 0) return -1
      out[o++] = b
    }
    if (code !== 0xff && i < len) out[o++] = 0
  }
  return o
}

/**
 * One complete frame for `payload`: COBS(payload ‖ crc32le) ‖ 0x00, in one pass
 * and one allocation (small typed-array allocations dominate at check-in sizes).
 */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const len = payload.length
  const n = len + CRC_BYTES
  const crc = crc32(payload)
  const out = Buffer.allocUnsafe(n + Math.ceil(n / 254) + 2)
  let codeAt = 0
  let o = 1
  let code = 1
  for (let i = 0; i < n; i++) {
    const b = i < len ? payload[i]! : (crc >>> ((i - len) * 8)) & 0xff
    if (b === 0) {
      out[codeAt] = code
      codeAt = o++
      code = 1
    } else {
      out[o++] = b
      if (++code === 0xff && i < n - 1) {
        out[codeAt] = code
        codeAt = o++
        code = 1
      }
    }
  }
  out[codeAt] = code
  out[o++] = FRAME_DELIMITER
  return out.subarray(0, o)
}

export interface DeframerStats {
  /** Frames whose CRC matched, delivered. */
  frames: number
  /** Bytes received in total. */
  bytes: number
  /** Frames with a wrong CRC (line noise, lost bytes). */
  crcErrors: number
  /** Frames that are not valid COBS. */
  cobsErrors: number
  /** Frames longer than MAX_FRAME_BYTES, discarded up to the next delimiter. */
  oversize: number
  /** Frames too short to hold a CRC (bare noise between delimiters). */
  runts: number
  /** Empty frames (repeated delimiters); harmless, used as line idle fill. */
  empty: number
}

export type DeframeError = 'crc' | 'cobs' | 'oversize' | 'runt'

/**
 * Streaming deframer. `push` returns the payloads completed by `chunk`; errors
 * go to `onError` (optional) and `stats`. Memory is bounded by MAX_FRAME_BYTES.
 */
export class Deframer {
  readonly stats: DeframerStats = { frames: 0, bytes: 0, crcErrors: 0, cobsErrors: 0, oversize: 0, runts: 0, empty: 0 }
  private buf: Uint8Array
  /** COBS output, reused: a frame costs one allocation (its payload). */
  private scratch: Uint8Array
  private len = 0
  private discarding = false

  constructor(
    private readonly onError?: (kind: DeframeError, raw: Uint8Array) => void,
    private readonly maxFrame = MAX_FRAME_BYTES,
  ) {
    this.buf = new Uint8Array(Math.min(4096, maxFrame))
    this.scratch = new Uint8Array(this.buf.length)
  }

  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = []
    this.stats.bytes += chunk.length
    let start = 0
    while (start < chunk.length) {
      const z = chunk.indexOf(FRAME_DELIMITER, start)
      const end = z === -1 ? chunk.length : z
      this.append(chunk.subarray(start, end))
      if (z === -1) break
      this.finish(out)
      start = z + 1
    }
    return out
  }

  /** Bytes waiting for their delimiter. */
  get pending(): number {
    return this.len
  }

  private append(part: Uint8Array): void {
    if (this.discarding || part.length === 0) return
    if (this.len + part.length > this.maxFrame) {
      this.discarding = true
      this.len = 0
      return
    }
    if (this.len + part.length > this.buf.length) {
      const bigger = new Uint8Array(Math.min(this.maxFrame, Math.max(this.buf.length * 2, this.len + part.length)))
      bigger.set(this.buf.subarray(0, this.len))
      this.buf = bigger
      this.scratch = new Uint8Array(bigger.length)
    }
    this.buf.set(part, this.len)
    this.len += part.length
  }

  private finish(out: Uint8Array[]): void {
    if (this.discarding) {
      this.discarding = false
      this.stats.oversize++
      this.onError?.('oversize', new Uint8Array(0))
      return
    }
    const len = this.len
    this.len = 0
    if (len === 0) {
      this.stats.empty++
      return
    }
    const d = this.scratch
    const n = cobsDecodeInto(this.buf, len, d)
    if (n < 0) {
      this.stats.cobsErrors++
      this.onError?.('cobs', this.buf.slice(0, len))
      return
    }
    if (n < CRC_BYTES + 1) {
      this.stats.runts++
      this.onError?.('runt', this.buf.slice(0, len))
      return
    }
    const p = n - CRC_BYTES
    const want = (d[p]! | (d[p + 1]! << 8) | (d[p + 2]! << 16) | (d[p + 3]! << 24)) >>> 0
    if (crc32(d, 0, p) !== want) {
      this.stats.crcErrors++
      this.onError?.('crc', this.buf.slice(0, len))
      return
    }
    this.stats.frames++
    out.push(d.slice(0, p))
  }
}
