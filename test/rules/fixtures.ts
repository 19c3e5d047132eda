// Shared builders for the rules tests (not a test file; tap reports it as skipped).
import { parsePlan, type PatrolPlan, type PatrolPlanInput } from '../../src/rules/plans/schema.ts'
import type { CheckinRow } from '../../src/rules/coverage/inputs.ts'

export const at = (isoText: string): number => {
  const ms = Date.parse(isoText)
  if (Number.isNaN(ms)) throw new Error(`bad instant ${isoText}`)
  return ms
}
export const iso = (ms: number): string => new Date(ms).toISOString()

export function plan(over: Partial<PatrolPlanInput> = {}): PatrolPlan {
  return parsePlan({
    gridId: 'G1',
    checkpoints: [
      { id: 'A', tagIds: ['tag-a'], lat: 31.23, lon: 121.47 },
      { id: 'B', tagIds: ['tag-b'], lat: 31.24, lon: 121.47 },
    ],
    windows: { kind: 'every', every: '6h', start: '00:00' },
    ...over,
  })
}

let n = 0
/** A check-in at a local-ish ISO instant; receivedAt = deviceTime + 1 s unless given. */
export function scan(isoText: string, tagId: string, over: Partial<CheckinRow> = {}): CheckinRow {
  n++
  const deviceTime = at(isoText)
  return {
    id: over.id ?? `c${String(n).padStart(4, '0')}`,
    deviceId: 'D1',
    seq: n,
    tagId,
    deviceTime,
    receivedAt: deviceTime + 1000,
    badge: 'P1',
    deviceGridId: 'G1',
    ...over,
  }
}
