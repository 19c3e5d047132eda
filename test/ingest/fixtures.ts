// Fixtures for tests that hand messages to the ingest directly (no broker): a secret hash
// nobody checks, unique ids, and check-ins received at NOW. Not a test file.
import { randomBytes } from 'node:crypto'
import { encodeUplink, uplinkTopic, type Uplink } from '../../firmware-protocol/index.ts'
import type { IngestMessage } from '../../ingest/index.ts'

export const HASH = 'scrypt$16384$8$1$c2FsdA==$aGFzaA=='
export const uid = (p: string) => `${p}-${randomBytes(3).toString('hex')}`
export const NOW = Date.now()
export const msg = (deviceId: string, u: Uplink): IngestMessage => ({
  deviceId,
  kind: 'checkin',
  topic: uplinkTopic(deviceId, 'checkin'),
  payload: encodeUplink(u),
  receivedAt: new Date(NOW),
})
export const checkin = (seq: number, tagId: string): Uplink => ({ kind: 'checkin', seq, deviceTimeMs: NOW - 1000, checkin: { tagId, method: 'nfc' } })
