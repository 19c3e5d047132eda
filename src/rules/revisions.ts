import { createHash } from 'node:crypto'
import type { CellStatus, CoverageResult, GapResult } from './coverage/evaluate.ts'
import type { FraudSignal } from './coverage/inputs.ts'
import type { CaseProposal } from './cases/proposal.ts'
import type { Instant } from './tz.ts'

/**
 * Report revisions (DESIGN: a report carries the ingest watermark it was
 * computed at and a revision number, and a later revision says what changed).
 *
 * Only material changes bump the revision: the verdicts of the cells that are
 * not met (their status, visits and evidence), which cells are met, gaps,
 * signals, per-device/patroller figures and the coverage %. The evaluation
 * instant, and the moving end of a still-open gap (`toKind: 'now'`), are not
 * material — so re-running on the same data yields the same revision
 * (idempotent re-runs).
 *
 * Met cells' evidence is not material. Stored reports hold only the exceptions
 * (evaluate.ts, `cellsScope: 'exceptions'`): a report cites its met cells'
 * evidence as of its watermark — derived on demand from the rows received up to
 * it (runner.ts, reportDetail). Which check-ins a met cell cites is therefore
 * no change: an earlier scan uploaded late that a met cell would now cite
 * changes no cell of the report (its device's and patroller's scan counts do
 * move, and those figures are material). Late data that turns a cell met,
 * closes or shortens a gap, adds a signal or changes a figure bumps the
 * revision, and the runner updates or resolves the cases it touches. A cell a result in the exceptions
 * scope does not list, in a window it lists, is met; full results (stored
 * before, or derived on demand) compare with exceptions ones on those terms.
 */
export interface CoverageReport {
  readonly gridId: string
  readonly localDate: string
  readonly revision: number
  /** Ingest watermark (all rows received up to here were visible). */
  readonly watermark: Instant
  readonly result: CoverageResult
}

export type CoverageChange =
  | { readonly kind: 'cell'; readonly checkpointId: string; readonly windowKey: string; readonly from: CellStatus | null; readonly to: CellStatus | null; readonly evidenceAdded: readonly string[]; readonly evidenceRemoved: readonly string[] }
  | { readonly kind: 'gap_opened' | 'gap_closed' | 'gap_changed'; readonly checkpointId: string; readonly from: Instant; readonly before: GapResult | null; readonly after: GapResult | null }
  | { readonly kind: 'signal_added' | 'signal_removed'; readonly signal: FraudSignal }
  | { readonly kind: 'figures'; readonly subject: string }
  | { readonly kind: 'coverage'; readonly before: number | null; readonly after: number | null }

export function diffResults(prev: CoverageResult, next: CoverageResult): CoverageChange[] {
  const out: CoverageChange[] = []
  const cellKey = (c: { checkpointId: string; windowKey: string }) => `${c.windowKey}\u0000${c.checkpointId}`
  const prevCells = new Map(prev.cells.map((c) => [cellKey(c), c]))
  const nextCells = new Map(next.cells.map((c) => [cellKey(c), c]))
  // Not listed in an exceptions-scope result, in a window it has: met (evidence unknown).
  const implicit = (r: CoverageResult) => {
    const windows = new Set(r.cellsScope === 'exceptions' ? r.windows.map((w) => w.key) : [])
    return (windowKey: string) => (windows.has(windowKey) ? ('met' as const) : null)
  }
  const prevMet = implicit(prev)
  const nextMet = implicit(next)
  for (const k of union(prevCells.keys(), nextCells.keys())) {
    const a = prevCells.get(k)
    const b = nextCells.get(k)
    const any = (b ?? a)!
    const from = a?.status ?? prevMet(any.windowKey)
    const to = b?.status ?? nextMet(any.windowKey)
    const ea = a?.evidence ?? []
    const eb = b?.evidence ?? []
    if (from === to && (to === 'met' || (a?.visits === b?.visits && ea.join() === eb.join()))) continue
    out.push({
      kind: 'cell',
      checkpointId: any.checkpointId,
      windowKey: any.windowKey,
      from,
      to,
      evidenceAdded: eb.filter((x) => !ea.includes(x)),
      evidenceRemoved: ea.filter((x) => !eb.includes(x)),
    })
  }
  const gapKey = (g: GapResult) => `${g.from}\u0000${g.checkpointId}`
  const prevGaps = new Map(prev.gaps.map((g) => [gapKey(g), g]))
  const nextGaps = new Map(next.gaps.map((g) => [gapKey(g), g]))
  for (const k of union(prevGaps.keys(), nextGaps.keys())) {
    const a = prevGaps.get(k)
    const b = nextGaps.get(k)
    if (a && b && gapMaterial(a) === gapMaterial(b)) continue
    const any = (b ?? a)!
    out.push({ kind: !a ? 'gap_opened' : !b ? 'gap_closed' : 'gap_changed', checkpointId: any.checkpointId, from: any.from, before: a ?? null, after: b ?? null })
  }
  const sigKey = (s: FraudSignal) => `${s.kind}\u0000${s.deviceId}\u0000${s.checkinIds.join(',')}`
  const prevSig = new Map(prev.signals.map((s) => [sigKey(s), s]))
  const nextSig = new Map(next.signals.map((s) => [sigKey(s), s]))
  for (const [k, s] of nextSig) if (!prevSig.has(k)) out.push({ kind: 'signal_added', signal: s })
  for (const [k, s] of prevSig) if (!nextSig.has(k)) out.push({ kind: 'signal_removed', signal: s })
  const figs = (r: CoverageResult) =>
    new Map([...r.devices.map((d) => [`device:${d.deviceId}`, canonicalJson(d)] as const), ...r.patrollers.map((p) => [`patroller:${p.badge}`, canonicalJson(p)] as const)])
  const fa = figs(prev)
  const fb = figs(next)
  for (const k of union(fa.keys(), fb.keys())) if (fa.get(k) !== fb.get(k)) out.push({ kind: 'figures', subject: k })
  if (prev.summary.coveragePct !== next.summary.coveragePct) {
    out.push({ kind: 'coverage', before: prev.summary.coveragePct, after: next.summary.coveragePct })
  }
  return out
}

/**
 * The report to keep after evaluating at `watermark`: the previous one, unchanged,
 * when nothing material changed; else the next revision with its changes.
 */
export function nextRevision(
  prev: CoverageReport | undefined,
  result: CoverageResult,
  watermark: Instant,
): { report: CoverageReport; changed: boolean; changes: CoverageChange[] } {
  if (!prev) return { report: { gridId: result.gridId, localDate: result.localDate, revision: 1, watermark, result }, changed: true, changes: [] }
  const changes = diffResults(prev.result, result)
  if (changes.length === 0) return { report: prev, changed: false, changes }
  return { report: { ...prev, revision: prev.revision + 1, watermark, result }, changed: true, changes }
}

/** How a re-evaluation touches cases: keys to open, update (evidence/detail changed) and resolve. */
export function diffProposals(
  prev: readonly CaseProposal[],
  next: readonly CaseProposal[],
): { opened: CaseProposal[]; updated: CaseProposal[]; resolved: CaseProposal[] } {
  const a = new Map(prev.map((p) => [p.key, p]))
  const b = new Map(next.map((p) => [p.key, p]))
  const material = (p: CaseProposal) => JSON.stringify([p.evidence, p.detail, p.priority, p.title])
  return {
    opened: next.filter((p) => !a.has(p.key)),
    updated: next.filter((p) => a.has(p.key) && material(a.get(p.key)!) !== material(p)),
    resolved: prev.filter((p) => !b.has(p.key)),
  }
}

/**
 * A digest of exactly what diffResults compares: equal digests ⇔ no material
 * change, so a stored digest lets a re-run skip reading the previous result.
 * Met cells enter as their count per window; a full result and its exceptions
 * (exceptions.ts, exceptionsOf) have the same digest.
 */
export function materialDigest(r: CoverageResult): string {
  const metPerWindow = new Map<string, number>()
  if (r.cellsScope === 'exceptions') for (const w of r.windows) metPerWindow.set(w.key, w.met ?? 0)
  else for (const c of r.cells) if (c.status === 'met') metPerWindow.set(c.windowKey, (metPerWindow.get(c.windowKey) ?? 0) + 1)
  const material = [
    sortByKey(r.cells.filter((c) => c.status !== 'met').map((c) => [c.windowKey, c.checkpointId, c.status, c.visits, c.evidence])),
    [...metPerWindow].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
    sortByKey(r.gaps.map((g) => [g.from, g.checkpointId, gapMaterial(g)])),
    [...new Set(r.signals.map((s) => `${s.kind}\u0000${s.deviceId}\u0000${s.checkinIds.join(',')}`))].sort(),
    [...r.devices.map((d) => `device:${d.deviceId}\u0000${canonicalJson(d)}`), ...r.patrollers.map((p) => `patroller:${p.badge}\u0000${canonicalJson(p)}`)].sort(),
    r.summary.coveragePct,
  ]
  return createHash('sha256').update(JSON.stringify(material)).digest('base64url')
}

/**
 * The evaluation engine's version, stored with each report (as the prefix of its
 * digest). Bump it whenever the same inputs would now give a different result
 * (verdicts, gaps, signals, figures, cases): incremental evaluation (runner.ts)
 * re-evaluates every report not computed by this version instead of trusting it.
 *   2: check-ins without a tag placed at no checkpoint (GPS fixes in no geofence) raise
 *      `outside_geofence`, no longer `unknown_tag` with an empty tag; check-ins the ingest
 *      resolved to a registered checkpoint the plan does not list raise `unplanned_checkpoint`
 *      (with its grid), no longer `unknown_tag` / `outside_geofence`.
 */
export const ENGINE_VERSION = 2
const ENGINE_TAG = `e${ENGINE_VERSION}.`

/** The digest stored with a report: materialDigest tagged with the engine version. */
export function reportDigest(r: CoverageResult): string {
  return ENGINE_TAG + materialDigest(r)
}

/** A stored digest written by this engine version (null, untagged or another version: no). */
export function isCurrentDigest(digest: string | null): boolean {
  return digest !== null && digest.startsWith(ENGINE_TAG)
}

/** JSON with the object's own keys sorted (figures come from SQL rows or Node objects, in either key order). */
function canonicalJson(o: object): string {
  return JSON.stringify(Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))))
}

/** Sorted by the JSON text of each entry's first two fields (each key serialised once, stable). */
function sortByKey(entries: unknown[][]): unknown[][] {
  const keyed = entries.map((e) => ({ k: JSON.stringify(e.slice(0, 2)), e }))
  keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
  return keyed.map((x) => x.e)
}

function gapMaterial(g: GapResult): string {
  return JSON.stringify([g.fromKind, g.fromCheckinId, g.toKind, g.toCheckinId, g.final, g.toKind === 'now' ? null : g.to])
}

function union<T>(a: Iterable<T>, b: Iterable<T>): T[] {
  return [...new Set([...a, ...b])].sort()
}
