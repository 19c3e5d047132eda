// Row types and repositories of the rules' storage (issue 6): plans, coverage
// aggregates and reports, cases with their audit trail, the ingest watermark.
// Re-exported by types.ts, which merges RulesRepositories into Store; rules and
// API import them from there. Times: Unix ms in and out (the rules deal in ms).
import type { CoverageAggregates, CoverageQuery } from '../rules/coverage/inputs.ts'
import type { CompactAggregates } from '../rules/coverage/compact.ts'

export type { CoverageAggregates, CoverageQuery } from '../rules/coverage/inputs.ts'

/** A plan version without its document. */
export interface PlanVersion {
  gridId: string
  version: number
  /** Local date 'YYYY-MM-DD' or null (always). */
  effectiveFrom: string | null
}

export interface PlanRow {
  gridId: string
  version: number
  /** Local date 'YYYY-MM-DD' or null (always). */
  effectiveFrom: string | null
  /** The validated plan JSON (rules/plans/schema.ts). */
  plan: unknown
  createdBy: string | null
  createdAt: Date
}

export interface CoverageReportRow {
  gridId: string
  localDate: string
  revision: number
  planVersion: number
  watermarkMs: number | null
  evaluatedAtMs: number
  coveragePct: number | null
  met: number
  missed: number
  pending: number
  /** rules/coverage/evaluate.ts CoverageResult as JSON. */
  result: unknown
  /** rules/revisions.ts CoverageChange[] as JSON. */
  changes: unknown[]
  /** rules/revisions.ts materialDigest of the result (null on rows from before migration 013). */
  digest: string | null
}
export type NewCoverageReport = CoverageReportRow

/** The latest revision of a grid-day without its result (reports.latestDigests). */
export interface ReportHead {
  gridId: string
  localDate: string
  revision: number
  digest: string | null
  planVersion: number
  watermarkMs: number | null
  evaluatedAtMs: number
  /** When the row was written, in the database's clock (compared with cases.contextChangedAtMs). */
  createdAtMs: number
}

export type CaseStateName = 'reported' | 'accepted' | 'rejected' | 'dispatched' | 'handled' | 'verified' | 'closed' | 'reopened'
export type CaseJson = string | number | boolean | null

export interface CaseRow {
  id: number
  dedupKey: string
  rule: string
  gridId: string
  subject: string | null
  windowKey: string | null
  reportDate: string | null
  category: string
  department: string | null
  priority: 'normal' | 'urgent'
  state: CaseStateName
  title: string
  detectedAtMs: number
  openedAtMs: number
  updatedAtMs: number
  stageDueAtMs: number | null
  closureDueAtMs: number
  clearedAtMs: number | null
  evidence: string[]
  detail: Record<string, CaseJson>
}

export interface CaseEventRow {
  id: number
  caseId: number
  from: CaseStateName | null
  to: CaseStateName
  /** Workflow transition id, or 'raise' / 'update' / 'note'. */
  rule: string
  actor: string
  role: string
  note: string | null
  atMs: number
  detail: Record<string, unknown> | null
}
export type NewCaseEvent = Omit<CaseEventRow, 'id' | 'caseId' | 'from' | 'to'>

export interface NewCase {
  dedupKey: string
  rule: string
  gridId: string
  subject: string | null
  windowKey: string | null
  reportDate: string | null
  category: string
  department: string | null
  priority: 'normal' | 'urgent'
  title: string
  detectedAtMs: number
  openedAtMs: number
  stageDueAtMs: number | null
  closureDueAtMs: number
  evidence: readonly string[]
  detail: Readonly<Record<string, CaseJson>>
}

/** What `cases.transition`'s decide callback returns: the new state and the audit entry. */
export interface CaseChange {
  to: CaseStateName
  event: NewCaseEvent
  stageDueAtMs: number | null
  /** Set cleared_at (the rule no longer proposes the case). */
  clearedAtMs?: number
}

export interface CaseFilter {
  gridId?: string
  states?: CaseStateName[]
  rule?: string
  /** Stage deadline before this instant (overdue at it), non-terminal states only. */
  overdueAtMs?: number
  /** The local date of the report the case came from (patrol rules). */
  reportDate?: string
  department?: string
  /** At most this many, oldest first (default 10,000). */
  limit?: number
}

/** A filed case with what the closure metrics need (rules/cases/metrics.ts). */
export interface CaseClosureRow {
  id: number
  dedupKey: string
  gridId: string
  /** The grid's street (the grid itself when it is a street; null for a district). */
  streetId: string | null
  department: string | null
  closureDueAtMs: number
  /** State-changing audit entries (the report first), oldest first. */
  events: Array<{ to: CaseStateName; atMs: number }>
}

export interface RulesRepositories {
  plans: {
    /** Appends the next version of the grid's plan. */
    put(p: { gridId: string; effectiveFrom: string | null; plan: unknown; createdBy?: string | null }): Promise<PlanRow>
    /** All versions, oldest first. */
    list(gridId: string): Promise<PlanRow[]>
    /** Every version of every grid with a plan, without its document (the runner picks the one in force per date; versions are immutable, so it keeps what it parsed). */
    versions(): Promise<PlanVersion[]>
    /** These versions with their documents. */
    getVersions(keys: ReadonlyArray<{ gridId: string; version: number }>): Promise<PlanRow[]>
  }
  coverage: {
    /** Stage A of coverage evaluation in SQL (rules/coverage/inputs.ts contract). */
    aggregates(q: CoverageQuery): Promise<CoverageAggregates>
    /** Stage A for many grid-days in one pass over the check-ins, in input order. */
    aggregatesMany(qs: readonly CoverageQuery[]): Promise<CoverageAggregates[]>
    /**
     * Stage A, exceptions only (rules/coverage/compact.ts), for many grid-days in
     * input order: equals `compactAggregates(q, aggregates(q))`, computed in SQL
     * with nothing per check-in or per met cell sent to Node (bulk evaluation).
     */
    compactMany(qs: readonly CoverageQuery[]): Promise<CompactAggregates[]>
    /**
     * Check-ins received in (sinceMs, untilMs] — what late uploads touched since a
     * watermark — and those a clock offset measured then re-times (its device's rows
     * after its previous sync), grouped by tag (or ingest-resolved checkpoint) and device grid,
     * with their device-time range and the earliest of them as stage A times it
     * (`firstAtMs`: device time less the offset of the device's first time sync
     * after the row, by seq, else its latest: queries/clock.ts). The
     * scheduler maps them to plans.
     */
    touched(sinceMs: number, untilMs: number): Promise<Array<{ tag: string; deviceGridId: string | null; fromMs: number; toMs: number; firstAtMs: number }>>
    /**
     * Per grid-day (its stage A query, and since when its report is trusted): whether
     * what stage A reads for it may have changed in (sinceMs, untilMs] — a check-in
     * received then that it reads (by a checkpoint id or tag of its plan, or by a device
     * of its grid, with a device time inside its scan bounds), a clock offset measured
     * then that re-times such a check-in (one recorded after the device's previous sync,
     * by seq), or its scan slack (the largest offset that can time its rows:
     * queries/clock.ts) moving. Incremental evaluation (runner.ts).
     */
    changedSince(items: ReadonlyArray<{ query: CoverageQuery; sinceMs: number }>, untilMs: number): Promise<boolean[]>
  }
  reports: {
    latest(gridId: string, localDate: string): Promise<CoverageReportRow | undefined>
    get(gridId: string, localDate: string, revision: number): Promise<CoverageReportRow | undefined>
    /** Revisions of a grid-day without their results, oldest first. */
    revisions(gridId: string, localDate: string): Promise<Array<Omit<CoverageReportRow, 'result'>>>
    /** The latest revision of every grid's report for a local date, without results, by grid. */
    ofDate(localDate: string): Promise<Array<Omit<CoverageReportRow, 'result'>>>
    /** Revision and digest of the latest report of each grid-day asked for (no results read). */
    latestDigests(keys: ReadonlyArray<{ gridId: string; localDate: string }>): Promise<ReportHead[]>
    /** The latest revision of each grid-day asked for (those with one), in one query. */
    latestMany(keys: ReadonlyArray<{ gridId: string; localDate: string }>): Promise<CoverageReportRow[]>
    /** Stores a revision; false when (grid, date, revision) exists already (a concurrent runner won). */
    save(r: NewCoverageReport): Promise<boolean>
    /**
     * save() for many in one transaction; per input, whether it was stored. With
     * `replaceProvisional`, each revision stored deletes the earlier provisional revisions of its
     * grid-day (pending cells > 0: stored while a window was open or in its grace), so a day keeps
     * its latest provisional revision and every revision stored once it was complete.
     */
    saveMany(rs: readonly NewCoverageReport[], opts?: { readonly replaceProvisional?: boolean }): Promise<boolean[]>
  }
  cases: {
    /**
     * Raises a case idempotently (one transaction): inserted with `event` when the
     * dedup key is new; else, when evidence/detail/title/priority differ, updated
     * with an 'update' entry. Never doubles a case under concurrency.
     */
    upsert(c: NewCase, event: NewCaseEvent): Promise<{ case: CaseRow; created: boolean; updated: boolean }>
    /** upsert() for many cases in one transaction (set-based), in input order. */
    upsertMany(items: ReadonlyArray<{ c: NewCase; event: NewCaseEvent }>): Promise<Array<{ case: CaseRow; created: boolean; updated: boolean }>>
    get(id: number): Promise<CaseRow | undefined>
    byKey(dedupKey: string): Promise<CaseRow | undefined>
    list(f?: CaseFilter): Promise<CaseRow[]>
    /** How many cases list(f) would return without its limit. */
    count(f?: Omit<CaseFilter, 'limit'>): Promise<number>
    /** Uncleared cases of the given rules that a grid-day's report raised. */
    forReport(gridId: string, localDate: string, rules: readonly string[]): Promise<CaseRow[]>
    /** forReport() for many grid-days in one query. */
    forReports(keys: ReadonlyArray<{ gridId: string; localDate: string }>, rules: readonly string[]): Promise<CaseRow[]>
    /**
     * upsertMany() when only the outcome counts: per input, whether the case was
     * created or updated (no case rows read back). Same transaction and audit entries.
     */
    raiseMany(items: ReadonlyArray<{ c: NewCase; event: NewCaseEvent }>): Promise<Array<{ created: boolean; updated: boolean }>>
    /**
     * When the case context that shapes raised cases (rules_config 'categories',
     * 'calendar') last changed, in the database's clock; null when never set.
     */
    contextChangedAtMs(): Promise<number | null>
    /** Uncleared cases of a rule (device rules: offline, battery, alarm, threshold). */
    openOfRule(rule: string): Promise<CaseRow[]>
    events(caseId: number): Promise<CaseEventRow[]>
    /** Cases first accepted (filed, 立案) in [fromMs, toMs), with their state changes: the closure metrics' input. */
    closureRows(f: { acceptedFromMs: number; acceptedToMs: number }): Promise<CaseClosureRow[]>
    /**
     * One transaction: locks the case, calls `decide` with it and its audit
     * trail (throw to refuse; null = nothing to do), applies the state change
     * and appends the event. Returns the case after, or undefined if unknown.
     */
    transition(
      caseId: number,
      decide: (c: CaseRow, events: readonly CaseEventRow[]) => CaseChange | null,
    ): Promise<{ case: CaseRow; event: CaseEventRow | null } | undefined>
  }
  rulesConfig: {
    /** calendar, categories: rules/cases/config.ts; device-rules: the offline, battery, alarm and threshold rules' configuration. */
    get(key: 'calendar' | 'categories' | 'device-rules'): Promise<unknown>
    set(key: 'calendar' | 'categories' | 'device-rules', value: unknown): Promise<void>
  }
  watermark: {
    /** Latest server receipt time of any accepted uplink (ms), null before the first. */
    current(): Promise<number | null>
  }
  rulesInputs: {
    /** Battery readings (device status) with device time in [fromMs, toMs), with the device's grid. */
    battery(fromMs: number, toMs: number): Promise<Array<{ id: string; deviceId: string; gridId: string; percent: number; atMs: number }>>
    /** Alarms received in [fromMs, toMs) with the device's grid. */
    alarms(fromMs: number, toMs: number): Promise<Array<{ id: string; deviceId: string; gridId: string; kind: string; atMs: number; lat: number | null; lon: number | null }>>
    /** Patrol and sensor devices with their grid, registration and last-seen (server) time. */
    presence(): Promise<Array<{ deviceId: string; gridId: string; registeredAtMs: number; lastSeenAtMs: number | null; disabled: boolean }>>
    /** Telemetry of one metric in [fromMs, toMs) (device time) with the device's grid. */
    telemetry(metric: string, fromMs: number, toMs: number): Promise<Array<{ id: string; sensorId: string; gridId: string; metric: string; value: number; atMs: number }>>
  }
}
