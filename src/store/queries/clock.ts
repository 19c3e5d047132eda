import type { Queryable } from '../db.ts'

/*
 * Clock periods: which time-sync estimate times a check-in (PROTOCOL.md §6).
 *
 * A row is timed `device_time − offset`, with the offset of the first time sync its
 * device acknowledged after recording it: the measurement whose ack seq is the
 * smallest ≥ the row's seq (seq counts on across clock changes; the ack is created
 * after the row). A row recorded after the device's last sync takes the latest
 * offset. A device that steps its clock right after a sync thus keeps the rows it
 * recorded before the step on the offset measured then, instead of having them
 * re-timed by the ≈ 0 a later sync measures (rules/coverage/clock.ts is the
 * reference). A `step` row (source 'step': store.clock.recordStep, migration 070)
 * is read like any measurement: it repeats the offset of the sync before a forward
 * jump the server found, with the seq of the device's last row before the jump, so
 * those rows keep that offset whatever the next sync measures.
 *
 * Only measurements from `cut` on (OFFSET_CUT_MS before the span, argued below)
 * are looked at, so the lists stay short whatever the history. A row whose true
 * time t is at or after the cut is timed exactly: the sync that times it was
 * received after the row was recorded, so it was measured after t ≥ cut. An older
 * row can only be read into a grid-day's scan bounds (scanBounds: a day plus at
 * most MAX_OFFSET_SLACK_MS around the span) with a clock more than
 * MAX_OFFSET_SLACK_MS ahead, beyond what the scan bounds honour anyway.
 */

const DAY = 86_400_000
/** Largest clock offset the scan bounds honour (coverage.ts scanBounds). */
export const MAX_OFFSET_SLACK_MS = 2 * DAY
/** How long before a grid-day's span the measurements that can time its rows start. */
export const OFFSET_CUT_MS = DAY + 2 * MAX_OFFSET_SLACK_MS

/** The earliest measurement that can time a row of a grid-day whose span starts at spanStartMs. */
export const offsetCut = (spanStartMs: number): number => spanStartMs - OFFSET_CUT_MS

/** Later than any measurement (year 5138): "as of now". */
const FAR_FUTURE_MS = 1e14

const ts = (ms: number) => `'${new Date(ms).toISOString()}'::timestamptz`

/**
 * Every device's latest measurement (measured at or before `asOf`, an SQL timestamptz, when given)
 * as rows (device_id, measured_at, off): two index probes per device on the primary key (a skip
 * scan), so the cost follows the number of devices, not the years of measurements kept.
 */
export const latestPerDevice = (asOf?: string): string => `(
  WITH RECURSIVE dev AS (
    SELECT (SELECT min(device_id) FROM clock_offsets) AS id
    UNION ALL
    SELECT (SELECT min(device_id) FROM clock_offsets WHERE device_id > dev.id) FROM dev WHERE dev.id IS NOT NULL
  )
  SELECT dev.id AS device_id, l.measured_at, l.off FROM dev
  CROSS JOIN LATERAL (SELECT measured_at, round(offset_ms)::int8 AS off FROM clock_offsets
                      WHERE device_id = dev.id${asOf ? ` AND measured_at <= ${asOf}` : ''} ORDER BY measured_at DESC LIMIT 1) l
  WHERE dev.id IS NOT NULL
)`

/**
 * A CTE `name(device_id, seqs, offs, latest)`: per device, the ack seqs (ascending)
 * and rounded offsets of its measurements since cutMs that carry a seq, and its
 * latest offset. `devices`: a subquery of device ids to limit it to.
 */
export function offsetsCte(cutMs: number, name = 'off', devices?: string): string {
  const only = devices ? ` AND device_id IN (${devices})` : ''
  const latest = devices
    ? `(SELECT DISTINCT ON (device_id) device_id, round(offset_ms)::int8 AS off FROM clock_offsets WHERE true${only} ORDER BY device_id, measured_at DESC)`
    : latestPerDevice()
  return `${name} AS (
  SELECT l.device_id, coalesce(a.seqs, '{}') AS seqs, coalesce(a.offs, '{}') AS offs, l.off AS latest
  FROM ${latest} l
  LEFT JOIN (SELECT device_id, array_agg(seq ORDER BY seq) AS seqs, array_agg(round(offset_ms)::int8 ORDER BY seq) AS offs FROM clock_offsets
             WHERE seq IS NOT NULL AND measured_at >= ${ts(cutMs)}${only} GROUP BY device_id) a ON a.device_id = l.device_id
)`
}

/**
 * A CTE `name(device_id, last, after_seq, old_off)`: each device with a measurement received in
 * (since, until] (SQL timestamptz expressions), the last of them, the seq after which its rows are
 * re-timed by them (its latest earlier sync's below the first new one; NULL: all its rows, also when
 * a new one has no seq) and the offset its rows took before (its latest as of `since`). A row up to
 * `after_seq` keeps the offset of the first sync after it. Materialised: the look-ups run once per
 * device, not once per check-in it is joined to.
 */
export const resyncedCte = (since: string, until: string, name = 'synced'): string => `${name} AS MATERIALIZED (
  SELECT f.device_id, f.last,
         CASE WHEN f.with_seq THEN (SELECT max(o.seq) FROM clock_offsets o
                                    WHERE o.device_id = f.device_id AND o.measured_at <= ${since} AND o.seq < f.min_seq) END AS after_seq,
         (SELECT round(o.offset_ms)::int8 FROM clock_offsets o
          WHERE o.device_id = f.device_id AND o.measured_at <= ${since} ORDER BY o.measured_at DESC LIMIT 1) AS old_off
  FROM (SELECT device_id, max(measured_at) AS last, min(seq) AS min_seq, bool_and(seq IS NOT NULL) AS with_seq FROM clock_offsets
        WHERE measured_at > ${since} AND measured_at <= ${until} GROUP BY device_id) f
)`

/**
 * The offset timing a row of seq `seq`, from a LEFT JOINed row `o` of offsetsCte:
 * the first listed measurement with ack seq ≥ seq (width_bucket: how many listed
 * seqs are < seq, by binary search), else the latest, else 0.
 */
export const rowOffset = (o: string, seq: string): string => `coalesce(${o}.offs[width_bucket(${seq} - 1, ${o}.seqs) + 1], ${o}.latest, 0)`

/**
 * The scan slack of each (cut, asOf): the largest |offset| (rounded as rowOffset's) that
 * can time a row at or after cut — every device's latest and every measurement since
 * cut — counting only measurements at or before asOf when it is given. Capped by the
 * callers (scanBounds).
 */
export async function offsetSlacks(db: Queryable, pairs: ReadonlyArray<{ cutMs: number; asOfMs?: number | null }>): Promise<number[]> {
  const keys = [...new Set(pairs.map((p) => `${p.cutMs}|${p.asOfMs ?? ''}`))]
  if (keys.length === 0) return []
  const cuts = keys.map((k) => Number(k.split('|')[0]))
  const asOf = keys.map((k) => (k.split('|')[1] === '' ? null : Number(k.split('|')[1])))
  // Every device's latest as of T, for many T at once: each device's latest as of the earliest T and
  // the measurements since; a measurement is its device's latest from its own time until the next one's (lead).
  const earliest = Math.min(...asOf.map((x) => x ?? FAR_FUTURE_MS))
  const rows = await db.query<{ i: number; m: number | null }>(
    `WITH p AS (SELECT * FROM unnest($1::int8[], $2::int8[]) WITH ORDINALITY AS p(cut, as_of, i)),
     m AS MATERIALIZED (
       SELECT measured_at, lead(measured_at) OVER (PARTITION BY device_id ORDER BY measured_at) AS nxt, abs(off) AS a FROM (
         SELECT device_id, measured_at, off FROM ${latestPerDevice('to_timestamp($3::float8 / 1000)')} b
         UNION ALL
         SELECT device_id, measured_at, round(offset_ms)::int8 FROM clock_offsets WHERE measured_at > to_timestamp($3::float8 / 1000)
       ) u
     ),
     l AS (
       SELECT t.as_of, (SELECT max(a) FROM m WHERE CASE WHEN t.as_of IS NULL THEN m.nxt IS NULL
                                                   ELSE m.measured_at <= to_timestamp(t.as_of::float8 / 1000)
                                                        AND (m.nxt IS NULL OR m.nxt > to_timestamp(t.as_of::float8 / 1000)) END) AS lmax
       FROM (SELECT DISTINCT as_of FROM p) t
     )
     SELECT p.i::int AS i, greatest(
       l.lmax,
       (SELECT max(abs(round(offset_ms)))::int8 FROM clock_offsets
        WHERE measured_at >= to_timestamp(p.cut::float8 / 1000) AND (p.as_of IS NULL OR measured_at <= to_timestamp(p.as_of::float8 / 1000)))
     ) AS m
     FROM p JOIN l ON l.as_of IS NOT DISTINCT FROM p.as_of`,
    [cuts, asOf, earliest],
  )
  const byKey = new Map(rows.map((r) => [keys[Number(r.i) - 1] as string, Number(r.m ?? 0)]))
  return pairs.map((p) => byKey.get(`${p.cutMs}|${p.asOfMs ?? ''}`) ?? 0)
}
