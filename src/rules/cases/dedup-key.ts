/**
 * The case dedup key (DESIGN: cases deduplicated keyed by rule, grid,
 * checkpoint, window). The store puts a unique index on it and upserts inside
 * one transaction, so re-evaluation or concurrent runners never double a case.
 *
 * `subject` is the checkpoint for patrol rules and the device or sensor for
 * device rules; `window` is the plan window key for misses, or the start of an
 * episode (gap, offline spell, low-battery spell, alarm burst, threshold run)
 * as an ISO instant — a new episode is a new case, the same episode re-seen is
 * the same case. Parts are percent-encoded and joined by '|', so the key is
 * stable, reversible and free of separators inside parts.
 */
export interface CaseKeyParts {
  readonly rule: string
  readonly gridId: string
  readonly subject: string | null
  readonly window: string | null
}

export function caseKey(p: CaseKeyParts): string {
  return [p.rule, p.gridId, p.subject ?? '', p.window ?? ''].map((x) => encodeURIComponent(x)).join('|')
}

export function parseCaseKey(key: string): CaseKeyParts {
  const parts = key.split('|')
  if (parts.length !== 4) throw new RangeError(`not a case key: ${key}`)
  const [rule, gridId, subject, window] = parts.map((x) => decodeURIComponent(x))
  return { rule: rule ?? '', gridId: gridId ?? '', subject: subject || null, window: window || null }
}

/** Episode start as it appears in keys: ISO-8601 UTC with milliseconds. */
export function episodeWindow(at: number): string {
  return new Date(at).toISOString()
}
