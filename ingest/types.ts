import type { Registry } from 'prom-client'
import type { ProtocolErrorCode, Uplink, UplinkKind } from '../firmware-protocol/index.ts'
import type { Logger } from 'pino'
import type { NewReject, Store, UplinkRecord } from '../src/store/types.ts'
import type { IngestRejectCode } from './errors.ts'

/** One uplink publish (structurally the broker's UplinkMessage; ingest does not import broker/). */
export interface IngestMessage {
  deviceId: string
  kind: UplinkKind
  topic: string
  payload: Uint8Array
  /** Receipt time: ms since the epoch or a Date. */
  receivedAt: Date | number
}

/** A presence event (structurally the broker's PresenceEvent). */
export interface IngestPresence {
  deviceId: string
  online: boolean
  reason: string
  at: Date
}

export interface IngestOptions {
  /** Most rows in one transaction. Default 5000. */
  maxBatchRows: number
  /** Rows waiting for a commit before commit() callers wait (backpressure). Default 50 000. */
  maxQueuedRows: number
  /** Transactions in flight at once (1 for the embedded driver). Default 1 embedded, 4 server. */
  writers: number
  /** Retry backoff while the database is unreachable. */
  retry: { initialMs: number; maxMs: number }
  /** How long a device's grid and a tag's checkpoint are cached. Default 30 s. */
  lookupTtlMs: number
  /**
   * How long an unregistered tag or unknown device is remembered as such
   * (negative cache): a tag registered meanwhile is picked up within this
   * time. Default 5 s.
   */
  unknownTtlMs: number
  /** Entries per lookup cache (devices, tags); the oldest are dropped past it. Default 100 000. */
  lookupMaxEntries: number
  /**
   * Days the dedup keys (uplink_seen) are kept, by receipt time — the storage
   * retention setting (GRIDPATROL_RETENTION_DAYS, which the store carries). 0 = forever.
   */
  retentionDays: number
  /** How often the expired dedup keys are pruned (first run at start). Default 1 h. */
  pruneEveryMs: number
  /** How long close() waits for commits that neither succeed nor fail (GRIDPATROL_SHUTDOWN_GRACE_SECONDS). Default 5000 ms. */
  closeTimeoutMs?: number
}

export interface IngestDeps {
  store: Store
  log: Logger
  registry?: Registry
  /** Injected clock (tests); default Date.now. */
  now?: () => number
  options?: Partial<IngestOptions>
  /**
   * Called after a message's rows are committed (or all were known stored), before it is
   * acknowledged: src/main.ts hands it to the clock-step check (src/commands/clock-steps.ts).
   * Must not throw or block; a throw is logged and ignored.
   */
  onStored?: (m: IngestStored) => void
}

/** A stored message, as the clock-step check reads it: the envelope as received and when. */
export interface IngestStored {
  deviceId: string
  receivedAtMs: number
  /** A batch's seq is 0 and its device time its upload time (its items are older). */
  kind: UplinkKind
  seq: number
  deviceTimeMs: number
  /** It carried a command acknowledgement (a time sync's measures the clock anew). */
  acks: boolean
}

export type RejectCode = ProtocolErrorCode | IngestRejectCode

/** What flows through the pipeline for one message. */
export interface Work {
  msg: IngestMessage
  receivedAtMs: number
  uplink?: Uplink
  /** Envelopes to store (a batch is unpacked into its items by validate). */
  envelopes: Uplink[]
  records: UplinkRecord[]
  reject?: NewReject
  /** Records the dedup stage already knew as committed (skipped before the write). */
  knownDuplicates: number
}
