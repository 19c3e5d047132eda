// The storage contract: the only module of src/store that rules, API and ingest
// import (lint enforces it). Times are Date on read and Unix ms on the write path
// (the ingest deals in device milliseconds).

export type GridLevel = 'district' | 'street' | 'community'
export type DeviceKind = 'patrol' | 'sensor' | 'service'
export type CommandStatus = 'queued' | 'sent' | 'acked' | 'expired'
export type CommandKind = 'time_sync' | 'config' | 'ping'

/** GeoJSON geometry as stored (Polygon or MultiPolygon); not validated here. */
export interface GeoJsonGeometry {
  type: string
  coordinates: unknown
}

export interface NewGrid {
  id: string
  level: GridLevel
  parentId?: string | null
  name: string
  /** 15 digits, e.g. the unit-grid code (county + street + community + sequence). */
  standardCode?: string | null
  boundary?: GeoJsonGeometry | null
  /** IANA zone; default Asia/Shanghai. */
  timeZone?: string
}
export interface GridRow {
  id: string
  level: GridLevel
  parentId: string | null
  name: string
  standardCode: string | null
  boundary: GeoJsonGeometry | null
  timeZone: string
  createdAt: Date
}

export interface NewCheckpoint {
  id: string
  gridId: string
  /** NFC/RFID/iButton id or QR text; null for a GPS-only geofence. Unique. */
  tagId: string | null
  name: string
  lat?: number | null
  lon?: number | null
  /** Geofence radius in metres; default 30. */
  radiusM?: number
}
export interface CheckpointRow {
  id: string
  gridId: string
  /** The oldest of tagIds (the one tag of earlier releases); null when it has none. */
  tagId: string | null
  /** Every tag registered to it, oldest first; empty for a GPS-only checkpoint. */
  tagIds: string[]
  name: string
  lat: number | null
  lon: number | null
  radiusM: number
  createdAt: Date
}

export interface NewDevice {
  id: string
  kind: DeviceKind
  vendor?: string | null
  gridId?: string | null
  /** `scrypt$N$r$p$saltB64$hashB64` from broker/ hashSecret. */
  secretHash: string
}
export interface DeviceRow {
  id: string
  kind: DeviceKind
  vendor: string | null
  gridId: string | null
  secretHash: string
  disabled: boolean
  createdAt: Date
  rotatedAt: Date | null
}

/** Clock plausibility flags set by the ingest; device times are never rewritten. */
export interface ClockFlags {
  clockFuture: boolean
  clockAncient: boolean
}

/** Where an uplink came from, kept so a conflicting one can be stored as a reject. */
export interface UplinkSource {
  topic: string
  payload: Uint8Array
}

interface RecordBase extends ClockFlags {
  deviceId: string
  /** Device sequence number, ≥ 1; (deviceId, seq) is the idempotency key. */
  seq: number
  deviceTimeMs: number
  receivedAtMs: number
  source?: UplinkSource
}
export interface CheckInRecord extends RecordBase {
  kind: 'checkin'
  tagId: string
  method: string
  /** Resolved by the ingest; null = unknown tag (row flagged unknown_tag). */
  checkpointId: string | null
  /** The device's assigned grid at ingest time. */
  gridId: string | null
  lat?: number
  lon?: number
  accuracyM?: number
  badgeId?: string
  batteryPct?: number
}
export interface TelemetryRecord extends RecordBase {
  kind: 'telemetry'
  readings: Array<{ metric: string; value: number; unit?: string; deviceTimeMs: number } & ClockFlags>
}
export interface StatusRecord extends RecordBase {
  kind: 'status'
  batteryPct?: number
  batteryMv?: number
  signalDbm?: number
  firmwareVersion?: string
  uptimeS?: number
  bufferedCount?: number
  bootCount?: number
  lat?: number
  lon?: number
}
export interface AlarmRecord extends RecordBase {
  kind: 'alarm'
  alarmKind: string
  lat?: number
  lon?: number
  badgeId?: string
  detail?: string
}
export interface AckRecord extends RecordBase {
  kind: 'ack'
  commandId: string
  status: string
  detail?: string
  /** t1 of a time sync: device clock when the command arrived. */
  receivedDeviceTimeMs?: number
  nonceHex?: string
}
export type UplinkRecord = CheckInRecord | TelemetryRecord | StatusRecord | AlarmRecord | AckRecord

export interface NewReject {
  receivedAtMs: number
  topic: string
  deviceId: string | null
  /** The payload exactly as received. */
  payload: Uint8Array
  code: string
  message: string
  field?: string
}
export interface RejectRow {
  id: number
  receivedAt: Date
  topic: string
  deviceId: string | null
  payload: Uint8Array
  code: string
  message: string
  field: string | null
}

export interface PresenceEvent {
  deviceId: string
  receivedAtMs: number
  online: boolean
  reason?: string
}

/** One group commit: everything in it is durable together or not at all. */
export interface WriteBatch {
  records: UplinkRecord[]
  rejects?: NewReject[]
  presence?: PresenceEvent[]
}
/**
 * Per record, in input order: 'new' (stored), 'duplicate' (same device, seq and
 * device time already stored: a re-send) or 'conflict' (same device and seq with
 * another device time: not stored; stored as a GP_INGEST_SEQ_CONFLICT reject
 * when the record carries its source).
 */
export type RecordOutcome = 'new' | 'duplicate' | 'conflict'
export interface WriteResult {
  outcomes: RecordOutcome[]
  inserted: number
  duplicates: number
  conflicts: number
  rejects: number
}

export interface CheckInRow {
  deviceId: string
  seq: number
  deviceTime: Date
  receivedAt: Date
  gridId: string | null
  checkpointId: string | null
  tagId: string
  method: string
  lat: number | null
  lon: number | null
  badgeId: string | null
  batteryPct: number | null
  clockFuture: boolean
  clockAncient: boolean
  unknownTag: boolean
}
export interface CheckInQuery {
  from: Date
  to: Date
  gridId?: string
  checkpointIds?: string[]
  deviceId?: string
  limit?: number
}
export interface HourlyVisitRow {
  bucket: Date
  checkpointId: string
  visits: number
  firstAt: Date
  lastAt: Date
}

export interface TelemetryRow {
  deviceId: string
  seq: number
  deviceTime: Date
  receivedAt: Date
  metric: string
  value: number
  unit: string | null
}
export interface TelemetryBucketRow {
  bucket: Date
  count: number
  min: number
  max: number
  avg: number
}

export interface DeviceStateRow {
  deviceId: string
  online: boolean | null
  presenceAt: Date | null
  lastSeenAt: Date | null
  lastSeq: number | null
  batteryPct: number | null
  statusAt: Date | null
}
export interface AlarmRow {
  deviceId: string
  seq: number
  deviceTime: Date
  receivedAt: Date
  kind: string
  lat: number | null
  lon: number | null
  badgeId: string | null
  detail: string | null
}

export interface NewCommand {
  commandId: string
  deviceId: string
  kind: CommandKind
  /** The command body as our own types (firmware-protocol Command), JSON-safe. */
  body: Record<string, unknown>
  issuedAtMs: number
  /** null = never expires. */
  expiresAtMs: number | null
}
export interface CommandRow {
  commandId: string
  deviceId: string
  kind: CommandKind
  body: Record<string, unknown>
  issuedAt: Date
  expiresAt: Date | null
  status: CommandStatus
  sentAt: Date | null
  ackedAt: Date | null
  ackStatus: string | null
  ackDetail: string | null
}

/** A time-sync measurement of a device's clock (clock_offsets, source NULL). */
export interface ClockEstimate {
  deviceId: string
  measuredAt: Date
  /** Device clock minus server clock, ms (positive = device ahead). */
  offsetMs: number
  delayMs: number
  commandId: string | null
  /** Seq of the acknowledgement that measured it (null: measured before migration 050 found none). */
  seq: number | null
  /**
   * When the server last found the clock jumped forward since this measurement (a `step` row:
   * `recordStep`), or null: a new sync is wanted to learn the clock as it is now.
   */
  stepSuspectedAt: Date | null
}

/** A row of clock_offsets: a time sync's measurement, or a step boundary (recordStep). */
export interface ClockRow {
  measuredAt: Date
  offsetMs: number
  delayMs: number
  commandId: string | null
  seq: number | null
  source: 'sync' | 'step'
}

/** A boundary recorded when a device's clock was found to have jumped forward (PROTOCOL.md §6). */
export interface ClockStep {
  deviceId: string
  /** The last seq known consistent with the estimate: rows up to it keep the estimate's offset. */
  seq: number
  /** The estimate the jump was measured against: its measuredAt (the device's latest measurement). */
  estimateMeasuredAtMs: number
  /** Server time of the finding (the row's measured_at; moved past the estimate's when not later). */
  atMs: number
}

export interface MigrationReport {
  applied: string[]
  skipped: string[]
  alreadyApplied: number
}

export interface StoreCapabilities {
  timescale: boolean
  driver: 'pglite' | 'pg'
}

/** Narrow repositories; SQL lives behind them (src/store/queries/). */
export interface Store {
  readonly capabilities: StoreCapabilities
  /** Applies pending NNN-name.sql migrations in order, each in its own transaction. */
  migrate(): Promise<MigrationReport>
  /** Cheap round trip; rejects when the database is unreachable. */
  ping(): Promise<void>
  close(): Promise<void>

  grids: {
    create(g: NewGrid): Promise<GridRow>
    get(id: string): Promise<GridRow | undefined>
    list(filter?: { parentId?: string | null; level?: GridLevel }): Promise<GridRow[]>
  }
  checkpoints: {
    create(c: NewCheckpoint): Promise<CheckpointRow>
    get(id: string): Promise<CheckpointRow | undefined>
    listByGrid(gridId: string): Promise<CheckpointRow[]>
    /** tag id → checkpoint, for the tags that are registered (any of a checkpoint's tags). */
    byTags(tagIds: string[]): Promise<Map<string, { checkpointId: string; gridId: string }>>
    /**
     * Registers one more tag to a checkpoint (a second side, a replacement; its other
     * tags keep working). Idempotent for a tag it already has (added: false). Refused
     * (StoreError GP_STORE_INVALID, naming both) for an empty tag, an unknown checkpoint,
     * or a tag another checkpoint has.
     */
    addTag(checkpointId: string, tagId: string): Promise<{ checkpoint: CheckpointRow; added: boolean }>
    /**
     * Unregisters a tag from a checkpoint: its check-ins are unknown tags from then on.
     * Refused for an unknown checkpoint, a tag it does not have, and its last tag when it
     * has no coordinates (it could no longer be visited; a geofence checkpoint may lose
     * every tag and stays GPS-only).
     */
    removeTag(checkpointId: string, tagId: string): Promise<CheckpointRow>
  }
  devices: {
    create(d: NewDevice): Promise<DeviceRow>
    get(id: string): Promise<DeviceRow | undefined>
    getMany(ids: string[]): Promise<Map<string, DeviceRow>>
    list(filter?: { gridId?: string; kind?: DeviceKind }): Promise<DeviceRow[]>
    rotateSecret(id: string, secretHash: string, atMs: number): Promise<boolean>
    setDisabled(id: string, disabled: boolean): Promise<boolean>
  }
  uplinks: {
    /**
     * One transaction: dedup by (device, seq), insert new rows, close acked
     * commands and record clock offsets, store rejects and presence, update
     * device state. Safe to call concurrently: keys are locked in sorted order.
     */
    write(batch: WriteBatch): Promise<WriteResult>
    /**
     * Forgets the dedup keys (uplink_seen) received before `beforeMs`; returns how
     * many. A re-send older than that is claimed again, and the time-series
     * tables' (device, seq, device_time) unique keys keep it from a second row
     * while the original row is retained.
     */
    pruneSeen(beforeMs: number): Promise<number>
    /** The storage retention setting in days (0 = forever): the ingest prunes the dedup keys with it. */
    readonly retentionDays: number
  }
  checkIns: {
    list(q: CheckInQuery): Promise<CheckInRow[]>
    /** Visits per checkpoint per hour of device time (continuous aggregate or view). */
    hourlyVisits(q: { from: Date; to: Date; checkpointIds?: string[]; gridId?: string }): Promise<HourlyVisitRow[]>
    count(q?: { deviceId?: string }): Promise<number>
  }
  telemetry: {
    list(q: { deviceId: string; metric?: string; from: Date; to: Date; limit?: number }): Promise<TelemetryRow[]>
    buckets(q: { deviceId: string; metric: string; from: Date; to: Date; bucketSeconds: number }): Promise<TelemetryBucketRow[]>
  }
  devicesState: {
    get(deviceId: string): Promise<DeviceStateRow | undefined>
    list(): Promise<DeviceStateRow[]>
  }
  alarms: {
    list(q: { from: Date; to: Date; deviceId?: string }): Promise<AlarmRow[]>
  }
  commands: {
    enqueue(c: NewCommand): Promise<CommandRow>
    get(commandId: string): Promise<CommandRow | undefined>
    /** Queued or sent, not expired at `nowMs`, oldest first: what to deliver on reconnect. */
    pending(deviceId: string, nowMs: number): Promise<CommandRow[]>
    markSent(commandIds: string[], atMs: number): Promise<void>
    /** Marks every queued/sent command past its expiry as expired; returns how many. */
    expire(nowMs: number): Promise<number>
  }
  clock: {
    /** The latest measurement (a time sync's, never a step boundary), or undefined before the first time-sync round trip. */
    latest(deviceId: string): Promise<ClockEstimate | undefined>
    /** The latest measurement of each of these devices that has one (one query for many). */
    latestOf(deviceIds: readonly string[]): Promise<ClockEstimate[]>
    /**
     * Records a forward clock step found after the device's latest measurement (source 'step': the
     * measurement's offset and delay again, with `seq`), so its rows up to `seq` keep that offset
     * whatever the next sync measures. Only while that measurement is still the device's latest row
     * and its seq is below `seq`; false when nothing was recorded.
     */
    recordStep(step: ClockStep): Promise<boolean>
    /** Every row kept for a device, measurements and step boundaries, oldest first (diagnostics, tests). */
    history(deviceId: string): Promise<ClockRow[]>
    /**
     * Forgets the estimates measured before `beforeMs` except each device's latest row and latest
     * measurement; returns how many. A kept check-in is timed by the first sync after it, measured after
     * it (queries/clock.ts), so the ingest prunes with the retention of the check-ins.
     */
    prune(beforeMs: number): Promise<number>
  }
  rejects: {
    list(q?: { from?: Date; to?: Date; deviceId?: string; limit?: number }): Promise<RejectRow[]>
    countByCode(): Promise<Record<string, number>>
  }
  /**
   * Housekeeping the embedded database cannot schedule itself (no background
   * workers): refresh the hourly aggregate over [from, to).
   */
  refreshAggregates(from: Date, to: Date): Promise<void>
  /**
   * Refreshes the planner's statistics, and vacuums coverage_reports (whose
   * provisional revisions are replaced), where nothing else does (the embedded
   * driver: no autovacuum); true when it ran. Seconds on a large database.
   */
  analyze(): Promise<boolean>
}

// --- Rules storage (issue 6): plans, coverage aggregates and reports, cases and
// their audit trail, rules config, watermark. Row types live in rules-types.ts;
// interface merging adds the repositories to Store.
export type * from './rules-types.ts'
import type { RulesRepositories } from './rules-types.ts'
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface Store extends RulesRepositories {}
