import t from 'tap'
import { assertTransition, CASE_STATES, checkTransition, ROLES, TRANSITIONS, type CaseState, type Role } from '../../../src/rules/cases/workflow.ts'
import { RulesError } from '../../../src/rules/errors.ts'

// The expected table, written out independently of TRANSITIONS: from → to → [roles, note].
const EXPECTED: Record<string, [Role[], boolean]> = {
  'reported>accepted': [['operator'], false],
  'reported>rejected': [['operator', 'system'], true],
  'accepted>rejected': [['operator', 'system'], true],
  'accepted>dispatched': [['dispatcher'], false],
  'dispatched>accepted': [['handler'], true],
  'dispatched>handled': [['handler'], true],
  'handled>verified': [['supervisor'], false],
  'handled>reopened': [['supervisor'], true],
  'reopened>dispatched': [['dispatcher'], false],
  'reopened>handled': [['handler'], true],
  'verified>closed': [['operator'], false],
  'closed>reopened': [['supervisor'], true],
}

t.test('every (from, to, role) is allowed or refused exactly as the table says', async (t) => {
  let allowed = 0
  for (const from of CASE_STATES) {
    for (const to of CASE_STATES) {
      for (const role of ROLES) {
        const exp = EXPECTED[`${from}>${to}`]
        const r = checkTransition({ state: from }, to, { id: 'u1', roles: [role] }, 'a note')
        if (!exp) {
          t.equal(r.ok ? 'ok' : r.error.code, 'GP_CASE_BAD_TRANSITION', `${from}→${to} as ${role}`)
        } else if (exp[0].includes(role)) {
          t.ok(r.ok, `${from}→${to} as ${role} allowed`)
          allowed++
          if (exp[1]) {
            const noNote = checkTransition({ state: from }, to, { id: 'u1', roles: [role] }, '  ')
            t.equal(noNote.ok ? 'ok' : noNote.error.code, 'GP_CASE_NOTE_REQUIRED', `${from}→${to} needs a note`)
          } else {
            t.ok(checkTransition({ state: from }, to, { id: 'u1', roles: [role] }, undefined).ok, `${from}→${to} without note`)
          }
        } else {
          t.equal(r.ok ? 'ok' : r.error.code, 'GP_CASE_FORBIDDEN', `${from}→${to} as ${role} forbidden`)
        }
      }
    }
  }
  t.equal(allowed, 14)
  t.equal(TRANSITIONS.length, Object.keys(EXPECTED).length)
})

t.test('errors name the rule', async (t) => {
  const bad = checkTransition({ state: 'reported' }, 'closed', { id: 'u', roles: ['operator'] }, 'x')
  t.notOk(bad.ok)
  if (!bad.ok) {
    t.equal(bad.error.rule, 'reported->closed')
    t.match(bad.error.message, /from reported it may go to accepted, rejected/)
  }
  const forbidden = checkTransition({ state: 'accepted' }, 'dispatched', { id: 'u', roles: ['handler'] }, 'x')
  if (!forbidden.ok) t.same([forbidden.error.rule, forbidden.error.message], ['dispatch', 'transition "dispatch" (accepted → dispatched) needs role dispatcher'])
  const terminal = checkTransition({ state: 'rejected' }, 'accepted', { id: 'u', roles: [...ROLES] }, 'x')
  if (!terminal.ok) t.match(terminal.error.message, /may go to nothing/)
  t.throws(() => assertTransition({ state: 'dispatched' }, 'handled', { id: 'h', roles: ['handler'] }, ''), { code: 'GP_CASE_NOTE_REQUIRED', rule: 'handle' })
  try {
    assertTransition({ state: 'verified' }, 'closed', { id: 'h', roles: ['handler'] }, '')
  } catch (e) {
    t.ok(e instanceof RulesError)
  }
})

t.test('separation of duties: who dispatched or handled may not verify, whatever their roles', async (t) => {
  const events = [
    { to: 'accepted' as CaseState, actorId: 'op' },
    { to: 'dispatched' as CaseState, actorId: 'boss' },
    { to: 'handled' as CaseState, actorId: 'worker' },
  ]
  const cases: Array<[string, CaseState, CaseState, string, Role[], string]> = [
    ['independent supervisor verifies', 'handled', 'verified', 'sup', ['supervisor'], 'ok'],
    ['dispatcher who is also supervisor', 'handled', 'verified', 'boss', ['dispatcher', 'supervisor'], 'GP_CASE_FORBIDDEN'],
    ['handler who is also supervisor', 'handled', 'reopened', 'worker', ['handler', 'supervisor'], 'GP_CASE_FORBIDDEN'],
    ['operator who accepted may still supervise', 'handled', 'verified', 'op', ['operator', 'supervisor'], 'ok'],
    ['reopen a closed case by its handler', 'closed', 'reopened', 'worker', ['supervisor'], 'GP_CASE_FORBIDDEN'],
    ['dual-role actor can still dispatch', 'reopened', 'dispatched', 'sup', ['supervisor', 'dispatcher'], 'ok'],
  ]
  for (const [name, state, to, id, roles, want] of cases) {
    const r = checkTransition({ state, events }, to, { id, roles }, 'checked on site')
    t.equal(r.ok ? 'ok' : r.error.code, want, name)
    if (!r.ok && want === 'GP_CASE_FORBIDDEN') t.match(r.error.rule, /separation-of-duties/)
  }
})

t.test('the result carries the role acted in', async (t) => {
  const r = checkTransition({ state: 'reported' }, 'rejected', { id: 'rules', roles: ['system'] }, 'late upload proves the visit')
  t.same(r.ok ? [r.role, r.rule.id] : [], ['system', 'reject'])
})
