import { checkDeviceClock, type Uplink } from '../../firmware-protocol/index.ts'
import type { ClockFlags } from '../../src/store/types.ts'
import type { Work } from '../types.ts'

/**
 * Unpacks a store-and-forward batch into its envelopes (each keeps its own seq
 * and device time). Protocol rules were checked by the codec; what remains is
 * the clock: implausible device times are flagged, never rewritten
 * (DESIGN: two clocks; PROTOCOL.md §6).
 */
export function validate(w: Work): void {
  const u = w.uplink as Uplink
  w.envelopes = u.kind === 'batch' ? u.batch.items : [u]
}

export function clockFlags(deviceTimeMs: number, receivedAtMs: number): ClockFlags {
  const v = checkDeviceClock(deviceTimeMs, receivedAtMs)
  return { clockFuture: v === 'future', clockAncient: v === 'ancient' }
}
