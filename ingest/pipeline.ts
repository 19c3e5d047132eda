// DESIGN: decode → validate → identify → dedup → batch write → ack. The order
// lives here, in one array (aedes connectActions, traccar's handler chain);
// reordering is a one-line diff and a test asserts it. The write and the ack
// are the batcher's: commit() resolves — and the broker writes the PUBACK —
// only after the transaction holding the rows (or the reject) has committed.
import { decode } from './stages/decode.ts'
import { dedup, type RecentKeys } from './stages/dedup.ts'
import { identify, type Lookups } from './stages/identify.ts'
import { validate } from './stages/validate.ts'
import type { Work } from './types.ts'

export interface StageDeps {
  lookups: Lookups
  recent: RecentKeys
}

export interface Stage {
  name: string
  run(w: Work, deps: StageDeps): void | Promise<void>
}

export const STAGES: readonly Stage[] = [
  { name: 'decode', run: (w) => decode(w) },
  { name: 'validate', run: (w) => validate(w) },
  { name: 'identify', run: (w, d) => identify(w, d.lookups) },
  { name: 'dedup', run: (w, d) => dedup(w, d.recent) },
]

/** The stages after the pipeline, run by the batcher. */
export const AFTER_PIPELINE = ['write', 'ack'] as const

/** Runs the stages in order; a stage that rejects the message ends the run. */
export async function runPipeline(w: Work, deps: StageDeps): Promise<Work> {
  const pending = runStages(w, deps, 0)
  if (pending) await pending
  return w
}

/**
 * The same, synchronously while every stage is (the hot path: all lookups cached):
 * undefined when the run is complete, else a promise of its end. No promise is
 * made per message unless a stage returns one.
 */
export function runStages(w: Work, deps: StageDeps, from = 0): Promise<void> | undefined {
  for (let i = from; i < STAGES.length; i++) {
    const pending = (STAGES[i] as Stage).run(w, deps)
    if (pending) {
      return pending.then(() => {
        if (w.reject) return
        return runStages(w, deps, i + 1)
      })
    }
    if (w.reject) break
  }
  return undefined
}
