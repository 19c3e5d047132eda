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

/**
 * The runner tests' stored plan document: checkpoints `<grid>-A` / `<grid>-B`
 * (tags `<grid>-ta` / `<grid>-tb`), shifts am 08–12 and pm 13–17, max gap 600 min,
 * grace 30 min.
 */
export const twoShiftPlan = (grid: string, extra: Record<string, unknown> = {}) => ({
  gridId: grid,
  checkpoints: [
    { id: `${grid}-A`, tagIds: [`${grid}-ta`] },
    { id: `${grid}-B`, tagIds: [`${grid}-tb`] },
  ],
  windows: { kind: 'shifts', shifts: [{ name: 'am', start: '08:00', end: '12:00' }, { name: 'pm', start: '13:00', end: '17:00' }] },
  maxGapMinutes: 600,
  graceMinutes: 30,
  ...extra,
})
