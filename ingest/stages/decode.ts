import { decodeUplink } from '../../firmware-protocol/index.ts'
import type { Work } from '../types.ts'
import { rejectWith } from '../rejects.ts'

/**
 * Bytes → Uplink. The codec checks the protobuf, every field rule, the topic's
 * kind against the body and the identity (a payload naming another device).
 * It never throws on input bytes; a failure becomes a reject with the raw bytes.
 */
export function decode(w: Work): void {
  const r = decodeUplink(w.msg.payload, { topic: w.msg.topic })
  if (!r.ok) {
    rejectWith(w, r.error.code, r.error.message, r.error.field)
    return
  }
  w.uplink = r.value
}
