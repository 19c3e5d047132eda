// The seam between the SQL (queries/, migrate.ts) and the two drivers.
// Drivers implement it in drivers/; nothing else imports a driver package.

export interface Queryable {
  /** One parameterised statement; rows as plain objects (int8 parsed to number). */
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>
  /** Several statements without parameters (migrations). */
  exec(text: string): Promise<void>
}

export interface Db extends Queryable {
  readonly driver: 'pglite' | 'pg'
  /** BEGIN … COMMIT around fn; ROLLBACK and rethrow when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  close(): Promise<void>
}

export class StoreError extends Error {
  override readonly name = 'StoreError'
  constructor(
    readonly code: 'GP_STORE_MIGRATION' | 'GP_STORE_OPEN' | 'GP_STORE_INVALID',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}
