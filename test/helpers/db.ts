// A throwaway server database per test run: created on the server named by
// DATABASE_URL, dropped (WITH FORCE) at teardown. Without DATABASE_URL the
// helper returns undefined and server-only tests skip.
import { randomBytes } from 'node:crypto'
import pg from 'pg'

interface Teardown {
  teardown(fn: () => unknown): void
}

export const serverUrl = (): string | undefined => process.env['DATABASE_URL'] || undefined

/** Creates `gp_test_<random>` and returns its URL; registers the DROP with `t`. */
export async function createTestDatabase(t: Teardown, prefix = 'gp_test'): Promise<string | undefined> {
  const db = await makeTestDatabase(prefix)
  if (!db) return undefined
  t.teardown(db.drop)
  return db.url
}

/** The same without registering: the caller drops (after closing its pools). */
export async function makeTestDatabase(prefix = 'gp_test'): Promise<{ url: string; drop: () => Promise<void> } | undefined> {
  const base = serverUrl()
  if (!base) return undefined
  const name = `${prefix}_${randomBytes(5).toString('hex')}`
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const drop = async () => {
    const c = new pg.Client({ connectionString: base })
    await c.connect()
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    } finally {
      await c.end()
    }
  }
  const url = new URL(base)
  url.pathname = `/${name}`
  return { url: url.toString(), drop }
}
