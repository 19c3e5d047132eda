/**
 * One-dimensional PostgreSQL arrays in the binary wire format (array_send's
 * layout), for the embedded driver's array parameters: PGlite passes a
 * Uint8Array parameter to Bind as binary, so neither side formats or parses
 * text — PGlite's own serialiser quotes and regex-escapes every element, then
 * scans the whole literal again to size it, and array_in parses each element
 * back (strtod for every float8). On a 5,000-row group of check-ins the 15 arrays
 * cost 4.4 µs/row of CPU that way against 1.5 µs/row in binary (BENCHMARKS.md,
 * Ingest, 2026-12-07).
 *
 * The element type's OID travels in the data and array_recv checks it against
 * the parameter's declared type (`$n::int8[]`): a mismatch is an error, never a
 * reinterpretation. Values are checked here as the text path's input functions
 * would check them (an int8 must be a safe integer, an int2 in range, …) —
 * binary would otherwise truncate or wrap silently — and fail with the same
 * SQLSTATE class (22).
 */
export type ElementType = 'text' | 'int8' | 'int4' | 'smallint' | 'float8' | 'real' | 'boolean'

const OID: Record<ElementType, number> = { text: 25, int8: 20, int4: 23, smallint: 21, float8: 701, real: 700, boolean: 16 }
const WIDTH: Record<ElementType, number> = { text: 0, int8: 8, int4: 4, smallint: 2, float8: 8, real: 4, boolean: 1 }
const utf8 = new TextEncoder()

export function binaryArray<T>(rows: readonly T[], f: (r: T) => unknown, type: ElementType): Uint8Array {
  const n = rows.length
  const values = new Array<unknown>(n)
  const width = WIDTH[type]
  // Header (ndim, flags, element type, length, lower bound), then per element a length and its bytes.
  let size = 20
  let nulls = 0
  for (let i = 0; i < n; i++) {
    const v = f(rows[i] as T)
    values[i] = v
    if (v === null || v === undefined) {
      nulls++
      size += 4
    } else if (type === 'text') {
      if (typeof v !== 'string') throw bad(type, v)
      size += 4 + v.length * 3 // UTF-8: at most 3 bytes per UTF-16 code unit
    } else size += 4 + width
  }
  const buf = new Uint8Array(size)
  const dv = new DataView(buf.buffer)
  dv.setInt32(0, n === 0 ? 0 : 1)
  dv.setInt32(4, nulls > 0 ? 1 : 0)
  dv.setInt32(8, OID[type])
  if (n === 0) return buf.subarray(0, 12)
  dv.setInt32(12, n)
  dv.setInt32(16, 1)
  let o = 20
  for (let i = 0; i < n; i++) {
    const v = values[i]
    if (v === null || v === undefined) {
      dv.setInt32(o, -1)
      o += 4
      continue
    }
    switch (type) {
      case 'text': {
        const s = v as string
        let j = 0
        // ASCII without TextEncoder (ids, tags, methods); anything else from the first non-ASCII unit on.
        for (; j < s.length; j++) {
          const c = s.charCodeAt(j)
          if (c > 127) break
          buf[o + 4 + j] = c
        }
        const len = j === s.length ? j : j + utf8.encodeInto(s.slice(j), buf.subarray(o + 4 + j)).written
        dv.setInt32(o, len)
        o += 4 + len
        break
      }
      case 'int8':
        if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad(type, v)
        dv.setInt32(o, 8)
        dv.setInt32(o + 4, Math.floor(v / 4294967296))
        dv.setUint32(o + 8, v >>> 0)
        o += 12
        break
      case 'int4':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < -2147483648 || v > 2147483647) throw bad(type, v)
        dv.setInt32(o, 4)
        dv.setInt32(o + 4, v)
        o += 8
        break
      case 'smallint':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < -32768 || v > 32767) throw bad(type, v)
        dv.setInt32(o, 2)
        dv.setInt16(o + 4, v)
        o += 6
        break
      case 'float8':
        if (typeof v !== 'number') throw bad(type, v)
        dv.setInt32(o, 8)
        dv.setFloat64(o + 4, v)
        o += 12
        break
      case 'real':
        if (typeof v !== 'number') throw bad(type, v)
        dv.setInt32(o, 4)
        dv.setFloat32(o + 4, v)
        o += 8
        break
      case 'boolean':
        if (typeof v !== 'boolean') throw bad(type, v)
        dv.setInt32(o, 1)
        buf[o + 4] = v ? 1 : 0
        o += 5
        break
    }
  }
  return buf.subarray(0, o)
}

/**
 * With the SQLSTATE the text path's input function would have raised (22003 out of
 * range, 22P02 invalid input): the batcher isolates data errors by class 22 and
 * would otherwise retry a group that can never be stored.
 */
function bad(type: ElementType, v: unknown): RangeError & { code: string } {
  const shown = typeof v === 'number' ? String(v) : typeof v
  const outOfRange = (type === 'int8' || type === 'int4' || type === 'smallint') && typeof v === 'number' && Number.isInteger(v)
  return Object.assign(new RangeError(`${shown} is not a valid ${type} array element`), { code: outOfRange ? '22003' : '22P02' })
}
