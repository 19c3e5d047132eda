import { CaseBadTransitionError, CaseForbiddenError, CaseNoteRequiredError, type RulesError } from '../errors.ts'

/**
 * The case workflow as data (DESIGN: supervision separated from command).
 *
 *   reported ──accept──▶ accepted ──dispatch──▶ dispatched ──handle──▶ handled ──verify──▶ verified ──close──▶ closed
 *      │                    │  ▲                    │                    │                                     │
 *      └──reject──▶ rejected ◀┘  └──────return───────┘                    └─fail-verification─▶ reopened ◀─reopen─┘
 *                                                                                    │  redispatch ▶ dispatched
 *                                                                                    └  rework     ▶ handled
 *
 * Roles: the supervision centre files and closes (operator) and checks on site
 * (supervisor); the command centre dispatches (dispatcher); departments handle
 * (handler); rules act as `system` only to raise (outside this table) or void a
 * case before it is dispatched — e.g. late uploads proving the visit happened.
 * Separation of duties: verify, fail-verification and reopen belong to
 * `supervisor` alone, and an actor who dispatched or handled this case may not
 * take them whatever roles they hold.
 * `rejected` and `closed` are terminal except `closed → reopened`.
 */
export const CASE_STATES = ['reported', 'accepted', 'rejected', 'dispatched', 'handled', 'verified', 'closed', 'reopened'] as const
export type CaseState = (typeof CASE_STATES)[number]

export const ROLES = ['system', 'operator', 'supervisor', 'dispatcher', 'handler'] as const
export type Role = (typeof ROLES)[number]

export interface TransitionRule {
  /** Names the rule in errors and the audit trail. */
  readonly id: string
  readonly from: CaseState
  readonly to: CaseState
  readonly roles: readonly Role[]
  readonly noteRequired: boolean
  /** Supervision step: refused to anyone who dispatched or handled the case. */
  readonly supervision: boolean
}

const t = (id: string, from: CaseState, to: CaseState, roles: Role[], noteRequired: boolean, supervision = false): TransitionRule =>
  Object.freeze({ id, from, to, roles: Object.freeze(roles), noteRequired, supervision })

export const TRANSITIONS: readonly TransitionRule[] = Object.freeze([
  t('accept', 'reported', 'accepted', ['operator'], false),
  t('reject', 'reported', 'rejected', ['operator', 'system'], true),
  t('void', 'accepted', 'rejected', ['operator', 'system'], true),
  t('dispatch', 'accepted', 'dispatched', ['dispatcher'], false),
  t('return', 'dispatched', 'accepted', ['handler'], true),
  t('handle', 'dispatched', 'handled', ['handler'], true),
  t('verify', 'handled', 'verified', ['supervisor'], false, true),
  t('fail-verification', 'handled', 'reopened', ['supervisor'], true, true),
  t('redispatch', 'reopened', 'dispatched', ['dispatcher'], false),
  t('rework', 'reopened', 'handled', ['handler'], true),
  t('close', 'verified', 'closed', ['operator'], false),
  t('reopen', 'closed', 'reopened', ['supervisor'], true, true),
])

/** Transitions whose performers count as "command" for separation of duties. */
const COMMAND_STATES: ReadonlySet<CaseState> = new Set(['dispatched', 'handled'])

export interface Actor {
  readonly id: string
  readonly roles: readonly Role[]
}

/** What the check needs of a case: its state and its audit trail so far. */
export interface CaseSnapshot {
  readonly state: CaseState
  readonly events?: ReadonlyArray<{ readonly to: CaseState; readonly actorId: string }>
}

export type TransitionCheck =
  | { readonly ok: true; readonly rule: TransitionRule; readonly role: Role }
  | { readonly ok: false; readonly error: RulesError }

/** The transitions allowed out of a state (for the API and the dashboard). */
export function transitionsFrom(state: CaseState): TransitionRule[] {
  return TRANSITIONS.filter((r) => r.from === state)
}

/**
 * Checks a requested transition against the table. The first failing rule
 * wins, in this order: unknown edge → GP_CASE_BAD_TRANSITION; no allowed role
 * or separation of duties → GP_CASE_FORBIDDEN; missing note → GP_CASE_NOTE_REQUIRED.
 * `role` in the result is the role the actor acts in (recorded in the audit).
 */
export function checkTransition(c: CaseSnapshot, to: CaseState, actor: Actor, note: string | null | undefined): TransitionCheck {
  const rule = TRANSITIONS.find((r) => r.from === c.state && r.to === to)
  if (!rule) {
    const allowed = transitionsFrom(c.state).map((r) => r.to)
    return fail(
      new CaseBadTransitionError(
        `${c.state}->${to}`,
        `a case cannot go from ${c.state} to ${to}; from ${c.state} it may go to ${allowed.length ? allowed.join(', ') : 'nothing'}`,
      ),
    )
  }
  const role = rule.roles.find((r) => actor.roles.includes(r))
  if (!role) {
    return fail(new CaseForbiddenError(rule.id, `transition "${rule.id}" (${rule.from} → ${rule.to}) needs role ${rule.roles.join(' or ')}`))
  }
  if (rule.supervision) {
    const commanded = (c.events ?? []).some((e) => e.actorId === actor.id && COMMAND_STATES.has(e.to))
    if (commanded) {
      return fail(
        new CaseForbiddenError(
          `${rule.id}:separation-of-duties`,
          `transition "${rule.id}" is supervision: ${actor.id} dispatched or handled this case and may not ${rule.id} it`,
        ),
      )
    }
  }
  if (rule.noteRequired && (note ?? '').trim() === '') {
    return fail(new CaseNoteRequiredError(rule.id, `transition "${rule.id}" (${rule.from} → ${rule.to}) requires a note`))
  }
  return { ok: true, rule, role }
}

/** checkTransition that throws the coded error. */
export function assertTransition(c: CaseSnapshot, to: CaseState, actor: Actor, note: string | null | undefined): TransitionRule {
  const r = checkTransition(c, to, actor, note)
  if (!r.ok) throw r.error
  return r.rule
}

function fail(error: RulesError): TransitionCheck {
  return { ok: false, error }
}

/** An audit entry as the runner/API appends it (append-only; the store adds the id). */
export interface CaseEvent {
  readonly caseKey: string
  readonly from: CaseState | null
  readonly to: CaseState
  readonly transition: string
  readonly actorId: string
  readonly role: Role
  readonly at: number
  readonly note: string | null
}
