import type { CaseChange, CaseRow, NewCaseEvent, Store } from '../../store/types.ts'
import type { WorkCalendar } from '../calendar.ts'
import { NotFoundError } from '../errors.ts'
import type { Instant } from '../tz.ts'
import { categoryOf, closureDue, STAGE_OF_STATE, stageDue, type CategoryTable } from './categories.ts'
import type { CaseProposal } from './proposal.ts'
import { checkTransition, type Actor, type CaseState } from './workflow.ts'

/** The rules engine acts as this actor (role `system`) in the audit trail. */
export const SYSTEM_ACTOR: Actor = Object.freeze({ id: 'rules', roles: Object.freeze(['system'] as const) })

export interface CaseContext {
  readonly store: Store
  readonly categories: CategoryTable
  readonly calendar: WorkCalendar
}

/** A proposal with the category's priority folded in (what is stored and compared). */
export function effective(ctx: CaseContext, p: CaseProposal): CaseProposal {
  const cat = categoryOf(ctx.categories, p.category)
  return cat.priority === 'urgent' && p.priority !== 'urgent' ? { ...p, priority: 'urgent' } : p
}

/** What a stored case says, as a proposal (so diffProposals can compare with the rules' new ones). */
export function asProposal(c: CaseRow): CaseProposal {
  return {
    key: c.dedupKey,
    rule: c.rule,
    gridId: c.gridId,
    subject: c.subject,
    window: c.windowKey,
    category: c.category,
    priority: c.priority,
    title: c.title,
    detectedAt: c.detectedAtMs,
    evidence: c.evidence,
    detail: c.detail,
  }
}

/** Raises or refreshes cases (idempotent: the store upserts by dedup key in one transaction). */
export async function raiseCases(ctx: CaseContext, items: ReadonlyArray<{ p: CaseProposal; reportDate: string | null }>, now: Instant) {
  const due = dueOf(ctx, now)
  return ctx.store.cases.upsertMany(items.map(({ p, reportDate }) => raiseItem(due, p, reportDate, now)))
}

/** raiseCases() when only whether each case was created or updated counts (no case rows read back). */
export async function raiseCasesCounted(ctx: CaseContext, items: ReadonlyArray<{ p: CaseProposal; reportDate: string | null }>, now: Instant) {
  const due = dueOf(ctx, now)
  return ctx.store.cases.raiseMany(items.map(({ p, reportDate }) => raiseItem(due, p, reportDate, now)))
}

/** Department and deadlines of a case raised at `now`, per category (computed once per category: working-hour arithmetic). */
function dueOf(ctx: CaseContext, now: Instant) {
  const memo = new Map<string, { department: string; stageDueAtMs: Instant; closureDueAtMs: Instant }>()
  return (category: string) => {
    let d = memo.get(category)
    if (!d) {
      const cat = categoryOf(ctx.categories, category)
      d = { department: cat.department, stageDueAtMs: stageDue(cat, ctx.calendar, 'accept', now), closureDueAtMs: closureDue(cat, ctx.calendar, now) }
      memo.set(category, d)
    }
    return d
  }
}

function raiseItem(due: ReturnType<typeof dueOf>, p: CaseProposal, reportDate: string | null, now: Instant) {
  const cat = due(p.category)
  return {
    c: {
      dedupKey: p.key,
      rule: p.rule,
      gridId: p.gridId,
      subject: p.subject,
      windowKey: p.window,
      reportDate,
      category: p.category,
      department: cat.department,
      priority: p.priority,
      title: p.title,
      detectedAtMs: p.detectedAt,
      openedAtMs: now,
      stageDueAtMs: cat.stageDueAtMs,
      closureDueAtMs: cat.closureDueAtMs,
      evidence: p.evidence,
      detail: p.detail,
    },
    event: { rule: 'raise', actor: SYSTEM_ACTOR.id, role: 'system', note: p.title, atMs: now, detail: { evidence: [...p.evidence] } },
  }
}

/**
 * The rule stopped proposing the case (late data filled the gap, the device is
 * back). Per the workflow table the system may reject a reported case or void an
 * accepted one; past that, command owns the case and the system only notes it.
 */
export async function resolveCase(ctx: CaseContext, caseId: number, note: string, now: Instant) {
  return ctx.store.cases.transition(caseId, (c) => {
    if (c.clearedAtMs !== null) return null
    const check = checkTransition({ state: c.state }, 'rejected', SYSTEM_ACTOR, note)
    const event: NewCaseEvent = { rule: 'note', actor: SYSTEM_ACTOR.id, role: 'system', note, atMs: now, detail: null }
    if (check.ok) return { to: 'rejected', event: { ...event, rule: check.rule.id }, stageDueAtMs: null, clearedAtMs: now }
    return { to: c.state, event, stageDueAtMs: c.stageDueAtMs, clearedAtMs: now }
  })
}

/**
 * A person's transition (CLI, API): checked against the workflow table inside
 * the store's transaction, so the check and the audit entry see the same state.
 * Throws the rule's coded error when refused, NotFoundError for an unknown case.
 */
export async function transitionCase(ctx: CaseContext, caseId: number, to: CaseState, actor: Actor, note: string | null, now: Instant) {
  const out = await ctx.store.cases.transition(caseId, (c, events): CaseChange => {
    const check = checkTransition({ state: c.state, events: events.map((e) => ({ to: e.to, actorId: e.actor })) }, to, actor, note)
    if (!check.ok) throw check.error
    const stage = STAGE_OF_STATE[to]
    const cat = categoryOf(ctx.categories, c.category)
    return {
      to,
      event: { rule: check.rule.id, actor: actor.id, role: check.role, note: note ?? null, atMs: now, detail: null },
      stageDueAtMs: stage ? stageDue(cat, ctx.calendar, stage, now) : null,
    }
  })
  if (!out) throw new NotFoundError('case', caseId)
  return out
}
