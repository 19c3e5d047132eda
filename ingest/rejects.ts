import type { RejectCode, Work } from './types.ts'

/** Marks the message rejected; the pipeline stops and the batcher stores it raw. */
export function rejectWith(w: Work, code: RejectCode, message: string, field?: string, deviceId: string | null = w.msg.deviceId): void {
  w.reject = {
    receivedAtMs: w.receivedAtMs,
    topic: w.msg.topic,
    deviceId,
    payload: w.msg.payload,
    code,
    message,
    ...(field !== undefined ? { field } : {}),
  }
}
