import type { Instant } from '../tz.ts'

/**
 * The seam between the store and coverage evaluation.
 *
 * Evaluation runs in two stages so the heavy part can run where the data is:
 *   A. aggregate — check-ins → per (checkpoint, window) visit counts and first-k
 *      evidence, per-period first/last visit and interior over-long gaps,
 *      per-device/patroller figures, anti-fraud signals. `aggregate.ts` is the
 *      pure reference implementation; the store implements the same contract
 *      in SQL (`Store.coverageAggregates(query)`), and a contract test asserts
 *      both give equal `CoverageAggregates` for the same rows.
 *   B. evaluate — aggregates + plan + now → verdicts, coverage %, leading and
 *      trailing gaps, figures (`evaluate.ts`, always in Node, O(cells)).
 *
 * All instants are epoch milliseconds (SQL: `(extract(epoch from t) * 1000)::bigint`).
 * Check-in ids are the store's natural key as text, `device_id || ':' || seq`
 * (check_ins has no surrogate id; (device, seq) is its idempotency key), so an
 * evidence id names exactly one row forever.
 *
 * Time basis (DESIGN: two clocks on every record). A check-in's time is its
 * device time corrected by the clock offset in force when it was stamped
 * (`at = device_time - offset`), else the raw device time. Offsets come from
 * time-sync round trips (clock_offsets), each measured by the device's ack with
 * a seq (per device, monotonic, never reused): a row is timed with the first
 * measurement at or after it in seq order (the smallest ack seq >= the row's
 * seq: the sync that measured the clock the row was stamped with, before any
 * correction the device made after it); rows after the last sync, and rows of
 * devices whose measurements carry no seq, with the device's latest measurement;
 * with no measurement, the raw device time (`clock.ts`, `offsetLookup`). So a
 * device that steps its clock right after a sync keeps its earlier rows at their
 * true time instead of re-timing them with the new ≈0 offset. Receipt time
 * is never used as the visit time — store-and-forward uploads arrive hours late
 * and would be credited to the wrong window. A corrected time later than receipt
 * by more than `maxAheadMs`, or earlier by more than `maxDelayMs`, is
 * implausible: the row is not credited to any window (when the visit happened
 * cannot be proven) and is reported as a `clock_implausible` signal.
 *
 * Visits: credited scans of one checkpoint closer than `rescanMs` to the
 * previous credited scan of that checkpoint chain into one visit, timed and
 * cited by its first scan (SQL: `lag(at) over (partition by checkpoint order by at, id)`).
 *
 * Sketch of the store's query (TimescaleDB and plain PostgreSQL alike):
 *
 *   with w(key, s, e, k) as (select * from unnest($windows_key::text[], $s::timestamptz[], $e::timestamptz[], $k::int[])),
 *   cp(id, tag) as (select * from unnest($cp_id::text[], $tag::text[])),      -- tag → checkpoint, incl. id itself
 *   scans as (
 *     select c.device_id || ':' || c.seq as id, c.device_id, c.seq, c.badge_id as badge, c.grid_id as device_grid, cp.id as checkpoint_id, c.tag_id,
 *            c.device_time - coalesce(o.offset_ms, 0) * interval '1 ms' as at, c.received_at,
 *            (c.device_time - coalesce(o.offset_ms,0) * interval '1 ms')
 *              between c.received_at - $max_delay and c.received_at + $max_ahead as plausible
 *     from check_ins c
 *     join devices d on d.id = c.device_id
 *     left join lateral (first clock estimate of c.device_id with ack seq >= c.seq, else its latest) o on true
 *     left join cp on cp.tag = coalesce(c.checkpoint_id, c.tag_id)
 *     where (cp.id is not null or c.grid_id = $grid)
 *       and c.device_time between $span_start - $max_ahead - '1 day' and $span_end + $max_delay   -- chunk pruning
 *   ),
 *   credited as (select *, at - lag(at) over (partition by checkpoint_id order by at, id) as since_prev
 *                from scans where plausible and checkpoint_id is not null
 *                  and at >= $span_start and at < $span_end and ($credit_foreign or device_grid = $grid)),
 *   visits as (select * from credited where since_prev is null or since_prev >= $rescan)
 *   -- cells:   select checkpoint_id, w.key, count(*), (array_agg(row(id, at, device_id, badge) order by at, id))[1:w.k]
 *   --          from visits join w on at >= w.s and at < w.e group by 1, 2
 *   -- periods: lag(at) over (partition by checkpoint_id, period order by at, id) > $max_gap, plus min/max per period
 *   -- signals: lag over (partition by device_id order by at, id) on all plausible scans (rescan, travel with
 *   --          checkpoint coordinates), device_grid <> $grid (foreign), not plausible (clock), unknown tag, no tag (outside_geofence),
 *   --          an ingest-resolved checkpoint not in the plan (unplanned_checkpoint)
 *   -- devices/patrollers: group by device_id / badge
 *   -- previous visit: per checkpoint, the last credited scan before $lookback_before (lateral … limit 1)
 */

/** One raw check-in row as the store holds it (for the reference aggregate and tests). */
export interface CheckinRow {
  /** `${deviceId}:${seq}` in the store. */
  readonly id: string
  readonly deviceId: string
  readonly seq: number
  readonly tagId: string
  /** Set when ingest already resolved the tag to a checkpoint. */
  readonly checkpointId?: string | null
  /**
   * The grid of `checkpointId` in the checkpoint registry (checkpoints.grid_id) as the store
   * reads it when it evaluates; unset / null: not registered (or no checkpointId). Used only
   * for a checkpoint the plan does not have (`unplanned_checkpoint`'s `gridId`).
   */
  readonly checkpointGridId?: string | null
  readonly deviceTime: Instant
  readonly receivedAt: Instant
  /** Patroller badge logged in on the device at scan time. */
  readonly badge?: string | null
  /** Grid the device was assigned to (check_ins.grid_id, set by the ingest). */
  readonly deviceGridId?: string | null
  readonly lat?: number | null
  readonly lon?: number | null
}

/**
 * One estimate of a device's clock offset: device clock minus server clock, in ms.
 * A row of the device is timed with the measurement of smallest `seq` >= the row's
 * seq; with none, the device's latest (largest `measuredAt`; undated measurements
 * count as older than dated ones, and among equals the last given wins, so a list
 * of plain `{ deviceId, offsetMs }` keeps "the last given per device"); with no
 * measurement at all, 0 (`clock.ts`, `offsetLookup`).
 */
export interface ClockOffset {
  readonly deviceId: string
  readonly offsetMs: number
  /**
   * Seq of the device's time-sync acknowledgement that measured it (same per-device
   * seq space as its check-ins). Unset/null: it serves only as the latest measurement.
   */
  readonly seq?: number | null | undefined
  /** When it was measured (server receipt of the ack, epoch ms); picks the latest. */
  readonly measuredAt?: number | undefined
}

/** What stage A needs; computed from a plan and a date by `coverageQuery()`. */
export interface CoverageQuery {
  readonly gridId: string
  readonly checkpoints: ReadonlyArray<{ id: string; tagIds: readonly string[]; lat?: number | undefined; lon?: number | undefined }>
  readonly windows: ReadonlyArray<{ key: string; start: Instant; end: Instant; evidenceLimit: number }>
  readonly periods: ReadonlyArray<{ start: Instant; end: Instant }>
  /** When set, the last credited visit before this instant is wanted per checkpoint. */
  readonly previousVisitBefore: Instant | undefined
  readonly rescanMs: number
  readonly maxGapMs: number
  readonly maxAheadMs: number
  readonly maxDelayMs: number
  readonly maxSpeedKmh: number
  readonly travelSlackMeters: number
  readonly creditForeignDevices: boolean
  /**
   * When set, only rows received at or before this instant count (a stored
   * report's detail "as of its watermark"); unset = every row the store holds.
   */
  readonly receivedUpTo?: Instant | undefined
}

/** A credited visit, cited by its first check-in. */
export interface VisitRef {
  readonly checkinId: string
  readonly at: Instant
  readonly deviceId: string
  readonly badge: string | null
}

export interface CellAggregate {
  readonly checkpointId: string
  readonly windowKey: string
  /** Visits in the window (after rescan chaining). */
  readonly visits: number
  /** The first `evidenceLimit` visits by (at, checkinId). */
  readonly evidence: readonly VisitRef[]
}

export interface PeriodAggregate {
  readonly checkpointId: string
  readonly periodStart: Instant
  readonly first: VisitRef
  readonly last: VisitRef
  /** Consecutive visits inside the period further apart than maxGapMs. */
  readonly longGaps: ReadonlyArray<{ from: VisitRef; to: VisitRef }>
}

/**
 * Scans the plan places at no checkpoint, by what the ingest made of them (check_ins.checkpoint_id):
 * `unplanned_checkpoint`: resolved to a registered checkpoint that is not the plan's (typically a
 * neighbouring grid's; `detail.checkpointId`, and `detail.gridId`, its grid in the registry);
 * not resolved: `unknown_tag`, a tag (`detail.tagId`), or `outside_geofence`, without a tag
 * (GPS) — the ingest found their fix in no geofence (signals.ts, outsideGeofenceDetail).
 */
export type SignalKind = 'rescan' | 'impossible_travel' | 'foreign_device' | 'clock_implausible' | 'unknown_tag' | 'outside_geofence' | 'unplanned_checkpoint'

export interface FraudSignal {
  readonly kind: SignalKind
  readonly deviceId: string
  readonly badge: string | null
  readonly checkpointIds: readonly string[]
  readonly checkinIds: readonly string[]
  readonly at: Instant
  readonly detail: Readonly<Record<string, number | string>>
}

export interface ScanFigures {
  /** All rows in scope (any clock, any tag). */
  readonly scans: number
  /** Visits this device/patroller was the first scan of. */
  readonly visits: number
  /** Distinct checkpoints among its credited scans. */
  readonly checkpoints: number
  readonly firstAt: Instant | null
  readonly lastAt: Instant | null
}

export interface DeviceAggregate extends ScanFigures {
  readonly deviceId: string
  readonly clockImplausible: number
  readonly foreignScans: number
  /**
   * Scans the plan places at no checkpoint, whatever the ingest made of them: the check-ins
   * its `unknown_tag`, `outside_geofence` and `unplanned_checkpoint` signals cite (none of
   * them credited to this grid). The name is older than the last two.
   */
  readonly unknownTagScans: number
}

export interface PatrollerAggregate extends ScanFigures {
  readonly badge: string
  readonly devices: readonly string[]
}

/** Stage A's result: what `Store.coverageAggregates(query)` returns, sorted as documented. */
export interface CoverageAggregates {
  /** Only cells with at least one visit; sorted by windowKey, checkpointId. */
  readonly cells: readonly CellAggregate[]
  /** Only (checkpoint, period) with at least one visit; sorted by periodStart, checkpointId. */
  readonly periods: readonly PeriodAggregate[]
  /** Last credited visit per checkpoint before `previousVisitBefore`; sorted by checkpointId. */
  readonly previousVisits: ReadonlyArray<{ checkpointId: string; visit: VisitRef }>
  readonly devices: readonly DeviceAggregate[]
  readonly patrollers: readonly PatrollerAggregate[]
  readonly signals: readonly FraudSignal[]
}
