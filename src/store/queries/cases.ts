import type { Db, Queryable } from '../db.ts'
import type { CaseClosureRow, CaseEventRow, CaseFilter, CaseRow, NewCase, NewCaseEvent, RulesRepositories } from '../rules-types.ts'

const ms = (col: string) => `(extract(epoch FROM ${col}) * 1000)::int8`
const CASE_COLS = `id, dedup_key AS "dedupKey", rule, grid_id AS "gridId", subject, window_key AS "windowKey",
  to_char(report_date, 'YYYY-MM-DD') AS "reportDate", category, department, priority, state, title,
  ${ms('detected_at')} AS "detectedAtMs", ${ms('opened_at')} AS "openedAtMs", ${ms('updated_at')} AS "updatedAtMs",
  ${ms('stage_due_at')} AS "stageDueAtMs", ${ms('closure_due_at')} AS "closureDueAtMs", ${ms('cleared_at')} AS "clearedAtMs",
  evidence, detail`
const EVENT_COLS = `id, case_id AS "caseId", from_state AS "from", to_state AS "to", rule, actor, role, note, ${ms('at')} AS "atMs", detail`
const ts = (i: number) => `to_timestamp($${i}::float8 / 1000)`

/** cases.list / cases.count: every filter optional ($1–$6, caseFilterParams). */
const CASE_FILTER = `($1::text IS NULL OR grid_id = $1) AND ($2::text[] IS NULL OR state = ANY($2)) AND ($3::text IS NULL OR rule = $3)
  AND ($4::float8 IS NULL OR (stage_due_at IS NOT NULL AND stage_due_at < ${ts(4)}))
  AND ($5::date IS NULL OR report_date = $5) AND ($6::text IS NULL OR department = $6)`
const caseFilterParams = (f: Omit<CaseFilter, 'limit'>) => [f.gridId ?? null, f.states ?? null, f.rule ?? null, f.overdueAtMs ?? null, f.reportDate ?? null, f.department ?? null]

async function appendEvent(tx: Queryable, caseId: number, from: string | null, to: string, e: NewCaseEvent): Promise<CaseEventRow> {
  const [row] = await tx.query<CaseEventRow>(
    `INSERT INTO case_events (case_id, from_state, to_state, rule, actor, role, note, at, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7, ${ts(8)}, $9::jsonb) RETURNING ${EVENT_COLS}`,
    [caseId, from, to, e.rule, e.actor, e.role, e.note, e.atMs, e.detail === null ? null : JSON.stringify(e.detail)],
  )
  return row as CaseEventRow
}

export function caseQueries(db: Db): RulesRepositories['cases'] {
  const one = async (where: string, param: unknown, q: Queryable = db) => (await q.query<CaseRow>(`SELECT ${CASE_COLS} FROM cases WHERE ${where}`, [param]))[0]
  return {
    upsert: async (c, event) => (await upsertMany(db, [{ c, event }]))[0] as { case: CaseRow; created: boolean; updated: boolean },
    upsertMany: (items) => upsertMany(db, items),
    raiseMany: (items) => upsertMany(db, items, false),
    async contextChangedAtMs() {
      const [row] = await db.query<{ m: number | null }>(
        `SELECT (extract(epoch FROM max(updated_at)) * 1000)::int8 AS m FROM rules_config WHERE key IN ('categories', 'calendar')`,
      )
      return row?.m ?? null
    },
    get: (id) => one('id = $1', id),
    byKey: (key) => one('dedup_key = $1', key),
    async list(f = {}) {
      return db.query<CaseRow>(`SELECT ${CASE_COLS} FROM cases WHERE ${CASE_FILTER} ORDER BY id LIMIT $7`, [...caseFilterParams(f), f.limit ?? 10_000])
    },
    async count(f = {}) {
      const [r] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM cases WHERE ${CASE_FILTER}`, caseFilterParams(f))
      return r?.n ?? 0
    },
    async forReport(gridId, localDate, rules) {
      return db.query<CaseRow>(
        `SELECT ${CASE_COLS} FROM cases WHERE grid_id = $1 AND report_date = $2::date AND rule = ANY($3::text[]) AND cleared_at IS NULL ORDER BY id`,
        [gridId, localDate, [...rules]],
      )
    },
    async forReports(keys, rules) {
      if (keys.length === 0) return []
      return db.query<CaseRow>(
        `SELECT ${CASE_COLS} FROM cases
         WHERE (grid_id, report_date) IN (SELECT * FROM unnest($1::text[], $2::date[])) AND rule = ANY($3::text[]) AND cleared_at IS NULL
         ORDER BY id`,
        [keys.map((k) => k.gridId), keys.map((k) => k.localDate), [...rules]],
      )
    },
    async openOfRule(rule) {
      return db.query<CaseRow>(`SELECT ${CASE_COLS} FROM cases WHERE rule = $1 AND cleared_at IS NULL ORDER BY id`, [rule])
    },
    async events(caseId) {
      return db.query<CaseEventRow>(`SELECT ${EVENT_COLS} FROM case_events WHERE case_id = $1 ORDER BY id`, [caseId])
    },
    async closureRows(f) {
      // Filing = the first 'accepted' entry; a case reopened and re-accepted keeps its first filing.
      return db.query<CaseClosureRow>(
        `WITH filed AS (
           SELECT case_id, min(at) AS at FROM case_events WHERE to_state = 'accepted' AND from_state IS DISTINCT FROM to_state GROUP BY case_id
         )
         SELECT c.id, c.dedup_key AS "dedupKey", c.grid_id AS "gridId",
                CASE g.level WHEN 'street' THEN g.id WHEN 'community' THEN g.parent_id END AS "streetId",
                c.department, ${ms('c.closure_due_at')} AS "closureDueAtMs",
                (SELECT json_agg(json_build_object('to', e.to_state, 'atMs', ${ms('e.at')}) ORDER BY e.id)
                   FROM case_events e WHERE e.case_id = c.id AND e.from_state IS DISTINCT FROM e.to_state) AS events
         FROM cases c JOIN filed ON filed.case_id = c.id LEFT JOIN grids g ON g.id = c.grid_id
         WHERE filed.at >= ${ts(1)} AND filed.at < ${ts(2)}
         ORDER BY c.id`,
        [f.acceptedFromMs, f.acceptedToMs],
      )
    },
    transition: (caseId, decide) =>
      db.transaction(async (tx) => {
        // Row lock: two concurrent transitions of one case are serialised and
        // the second decides on the state the first left.
        const c = await one('id = $1 FOR UPDATE', caseId, tx)
        if (!c) return undefined
        const events = await tx.query<CaseEventRow>(`SELECT ${EVENT_COLS} FROM case_events WHERE case_id = $1 ORDER BY id`, [caseId])
        const change = decide(c, events)
        if (!change) return { case: c, event: null }
        const [after] = await tx.query<CaseRow>(
          `UPDATE cases SET state = $2, updated_at = ${ts(3)}, stage_due_at = ${ts(4)},
             cleared_at = CASE WHEN $5::float8 IS NULL THEN cleared_at ELSE ${ts(5)} END
           WHERE id = $1 RETURNING ${CASE_COLS}`,
          [caseId, change.to, change.event.atMs, change.stageDueAtMs, change.clearedAtMs ?? null],
        )
        const event = await appendEvent(tx, caseId, c.state, change.to, change.event)
        return { case: after as CaseRow, event }
      }),
  }
}

/**
 * Cases per statement. A statement's cost per row grows with its input (past a few
 * MB of JSON its rows spill out of work_mem to a temporary file, and the server
 * touches more new memory): 10,000 cases in one statement ≈ 24 µs of server CPU
 * each, in chunks of 2,000 ≈ 18; 25,000: 26 vs 18 (BENCHMARKS.md, Rules, session 5).
 */
const CHUNK = 2000

/** f over consecutive slices of at most CHUNK items, in order; the results concatenated. */
async function chunked<T, R>(items: readonly T[], f: (part: readonly T[]) => Promise<R[]>): Promise<R[]> {
  if (items.length <= CHUNK) return f(items)
  const out: R[] = []
  for (let i = 0; i < items.length; i += CHUNK) out.push(...(await f(items.slice(i, i + CHUNK))))
  return out
}

/**
 * DESIGN: cases are deduplicated inside one transaction — INSERT … ON CONFLICT
 * on the unique dedup key, so two runners raising the same case insert it
 * once, and only the one whose INSERT took appends the 'raise' entry. A case
 * seen before is refreshed (late evidence) with an 'update' entry only when
 * something material changed. Set-based (a statement per step and per
 * CHUNK cases); keys are taken in sorted order, chunk after chunk, so
 * concurrent batches cannot deadlock.
 */
async function upsertMany(db: Db, items: ReadonlyArray<{ c: NewCase; event: NewCaseEvent }>): Promise<Array<{ case: CaseRow; created: boolean; updated: boolean }>>
async function upsertMany(db: Db, items: ReadonlyArray<{ c: NewCase; event: NewCaseEvent }>, rows: false): Promise<Array<{ created: boolean; updated: boolean }>>
async function upsertMany(db: Db, items: ReadonlyArray<{ c: NewCase; event: NewCaseEvent }>, rows = true) {
  if (items.length === 0) return []
  // Without rows (raiseMany) only what the audit entries need comes back.
  const cols = rows ? CASE_COLS : 'id, dedup_key AS "dedupKey", state'
  const sorted = [...new Map(items.map((x) => [x.c.dedupKey, x])).values()].sort((a, b) => (a.c.dedupKey < b.c.dedupKey ? -1 : 1))
  return db.transaction(async (tx) => {
    // Each statement's input is one JSON document (one native JSON.stringify; no per-element
    // array quoting of evidence and detail in the client, no unquoting in the server).
    // Its jsonb values are read as json fields and cast: json_to_recordset converting a
    // field to jsonb itself costs ≈ twice as much (BENCHMARKS.md, Rules, session 5).
    const inserted = await chunked(sorted, (part) => tx.query<CaseRow>(
      `INSERT INTO cases (dedup_key, rule, grid_id, subject, window_key, report_date, category, department, priority, state, title,
         detected_at, opened_at, updated_at, stage_due_at, closure_due_at, evidence, detail)
       SELECT k, r, g, s, w, rd, cat, dep, pr, 'reported', ti, to_timestamp(det / 1000), to_timestamp(op / 1000), to_timestamp(op / 1000),
              to_timestamp(sd / 1000), to_timestamp(cd / 1000), ev::jsonb, dt::jsonb
       FROM ROWS FROM (json_to_recordset($1::json)
         AS (k text, r text, g text, s text, w text, rd date, cat text, dep text, pr text, ti text, det float8, op float8, sd float8, cd float8, ev json, dt json))
         WITH ORDINALITY AS u(k, r, g, s, w, rd, cat, dep, pr, ti, det, op, sd, cd, ev, dt, o)
       ORDER BY o
       ON CONFLICT (dedup_key) DO NOTHING RETURNING ${cols}`,
      [
        JSON.stringify(
          part.map(({ c }) => ({
            k: c.dedupKey, r: c.rule, g: c.gridId, s: c.subject, w: c.windowKey, rd: c.reportDate, cat: c.category, dep: c.department, pr: c.priority,
            ti: c.title, det: c.detectedAtMs, op: c.openedAtMs, sd: c.stageDueAtMs, cd: c.closureDueAtMs, ev: c.evidence, dt: c.detail,
          })),
        ),
      ],
    ))
    const created = new Map(inserted.map((r) => [r.dedupKey, r]))
    const rest = sorted.filter((x) => !created.has(x.c.dedupKey))
    const updated = new Map<string, CaseRow>()
    if (rest.length > 0) {
      const changed = await chunked(rest, (part) => tx.query<CaseRow>(
        `UPDATE cases c SET evidence = u.ev, detail = u.dt, title = u.ti, priority = u.pr, updated_at = to_timestamp(u.at / 1000), cleared_at = NULL
         FROM (SELECT k, ev::jsonb AS ev, dt::jsonb AS dt, ti, pr, at FROM json_to_recordset($1::json) AS (k text, ev json, dt json, ti text, pr text, at float8)) u
         WHERE c.dedup_key = u.k
           AND (c.evidence, c.detail, c.title, c.priority, c.cleared_at IS NULL) IS DISTINCT FROM (u.ev, u.dt, u.ti, u.pr, true)
         RETURNING ${cols}`,
        [JSON.stringify(part.map((x) => ({ k: x.c.dedupKey, ev: x.c.evidence, dt: x.c.detail, ti: x.c.title, pr: x.c.priority, at: x.event.atMs })))],
      ))
      for (const r of changed) updated.set(r.dedupKey, r)
    }
    const events: Array<{ id: number; from: string | null; to: string; e: NewCaseEvent }> = []
    for (const x of sorted) {
      const c = created.get(x.c.dedupKey)
      if (c) events.push({ id: c.id, from: null, to: 'reported', e: x.event })
      const u = updated.get(x.c.dedupKey)
      if (u) events.push({ id: u.id, from: u.state, to: u.state, e: { ...x.event, rule: 'update' } })
    }
    if (events.length > 0) {
      await chunked(events, (part) => tx.query(
        `INSERT INTO case_events (case_id, from_state, to_state, rule, actor, role, note, at, detail)
         SELECT id, f, t, r, a, ro, n, to_timestamp(at / 1000), d::jsonb
         FROM json_to_recordset($1::json) AS u(id int8, f text, t text, r text, a text, ro text, n text, at float8, d json)`,
        [JSON.stringify(part.map((x) => ({ id: x.id, f: x.from, t: x.to, r: x.e.rule, a: x.e.actor, ro: x.e.role, n: x.e.note, at: x.e.atMs, d: x.e.detail })))],
      ))
    }
    if (!rows) return items.map((x) => ({ created: created.has(x.c.dedupKey), updated: !created.has(x.c.dedupKey) && updated.has(x.c.dedupKey) }))
    const unchanged = sorted.filter((x) => !created.has(x.c.dedupKey) && !updated.has(x.c.dedupKey))
    const current = new Map<string, CaseRow>()
    if (unchanged.length > 0) {
      for (const r of await tx.query<CaseRow>(`SELECT ${CASE_COLS} FROM cases WHERE dedup_key = ANY($1::text[])`, [unchanged.map((x) => x.c.dedupKey)])) current.set(r.dedupKey, r)
    }
    return items.map((x) => {
      const k = x.c.dedupKey
      const c = created.get(k)
      if (c) return { case: c, created: true, updated: false }
      const u = updated.get(k)
      if (u) return { case: u, created: false, updated: true }
      return { case: current.get(k) as CaseRow, created: false, updated: false }
    })
  })
}
