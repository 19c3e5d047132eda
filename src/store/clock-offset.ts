/**
 * NTP-style estimate from one time-sync round trip (downlink.proto TimeSync,
 * PROTOCOL.md §6): t0 server send, t1 device receipt, t2 device send of the
 * ack (envelope time), t3 server receipt. Offset is device minus server.
 */
export function estimateClockOffset(t0: number, t1: number, t2: number, t3: number): { offsetMs: number; delayMs: number } {
  return {
    offsetMs: (t1 - t0 + (t2 - t3)) / 2,
    delayMs: Math.max(0, t3 - t0 - (t2 - t1)),
  }
}
