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
  let o = 0
  let i = 0
  while (i < body.length) {
    const code = body[i++]!
    if (code === 0) return undefined
    const end = i + code - 1
    if (end > body.length) return undefined
    while (i < end) {
      const b = body[i++]!
      if (b === 0) return undefined
      out[o++] = b
    }
    if (code !== 0xff && i < body.length) out[o++] = 0
  }
  return out.subarray(0, o)
}

/** One complete frame for `payload`: COBS(payload ‖ crc32le) ‖ 0x00. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const withCrc = new Uint8Array(payload.length + CRC_BYTES)
  withCrc.set(payload)
  new DataView(withCrc.buffer).setUint32(payload.length, crc32(payload), true)
  const body = cobsEncode(withCrc)
  const frame = new Uint8Array(body.length + 1)
  frame.set(body)
  frame[body.length] = FRAME_DELIMITER
  return frame
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
  private len = 0
  private discarding = false

  constructor(
    private readonly onError?: (kind: DeframeError, raw: Uint8Array) => void,
    private readonly maxFrame = MAX_FRAME_BYTES,
  ) {
    this.buf = new Uint8Array(Math.min(4096, maxFrame))
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
    const body = this.buf.slice(0, this.len)
    this.len = 0
    if (body.length === 0) {
      this.stats.empty++
      return
    }
    const decoded = cobsDecode(body)
    if (!decoded) {
      this.stats.cobsErrors++
      this.onError?.('cobs', body)
      return
    }
    if (decoded.length < CRC_BYTES + 1) {
      this.stats.runts++
      this.onError?.('runt', body)
      return
    }
    const n = decoded.length - CRC_BYTES
    const want = new DataView(decoded.buffer, decoded.byteOffset, decoded.length).getUint32(n, true)
    if (crc32(decoded, 0, n) !== want) {
      this.stats.crcErrors++
      this.onError?.('crc', body)
      return
    }
    this.stats.frames++
    out.push(decoded.subarray(0, n))
  }
}
