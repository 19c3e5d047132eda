/**
 * The rules layer's coded errors (fastify's FST_ERR_* catalogue idea). Each names
 * the rule it enforces so an API 4xx or an audit line can say *why*.
 */
export class RulesError extends Error {
  readonly code: string
  /** The rule that refused: a transition id, a field, a config key. */
  readonly rule: string
  constructor(code: string, rule: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'RulesError'
    this.code = code
    this.rule = rule
  }
}

/** The requested transition is not in the workflow table from the case's state. */
export class CaseBadTransitionError extends RulesError {
  constructor(rule: string, message: string) {
    super('GP_CASE_BAD_TRANSITION', rule, message)
    this.name = 'CaseBadTransitionError'
  }
}

/** The actor lacks an allowed role, or separation of duties forbids them. */
export class CaseForbiddenError extends RulesError {
  constructor(rule: string, message: string) {
    super('GP_CASE_FORBIDDEN', rule, message)
    this.name = 'CaseForbiddenError'
  }
}

/** The transition requires a non-empty note. */
export class CaseNoteRequiredError extends RulesError {
  constructor(rule: string, message: string) {
    super('GP_CASE_NOTE_REQUIRED', rule, message)
    this.name = 'CaseNoteRequiredError'
  }
}

/** A calendar that can never satisfy a request (e.g. no working day at all). */
export class CalendarError extends RulesError {
  constructor(rule: string, message: string) {
    super('GP_RULES_CALENDAR', rule, message)
    this.name = 'CalendarError'
  }
}

/** A category name that the category table does not know. */
export class UnknownCategoryError extends RulesError {
  constructor(category: string) {
    super('GP_CASE_UNKNOWN_CATEGORY', 'category', `unknown case category "${category}"`)
    this.name = 'UnknownCategoryError'
  }
}

/** A case (or grid, plan) the request names does not exist. */
export class NotFoundError extends RulesError {
  constructor(what: string, id: string | number) {
    super('GP_RULES_NOT_FOUND', what, `${what} "${id}" does not exist`)
    this.name = 'NotFoundError'
  }
}
