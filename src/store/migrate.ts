import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { StoreError, type Db } from './db.ts'
import type { MigrationReport } from './types.ts'

export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url))

const FILE = /^(\d{3})-([a-z0-9-]+)\.sql$/
/**
 * First-line directive choosing the database flavour a migration is for:
 * `timescaledb` (hypertables), `tsl` (TimescaleDB's TSL features: continuous
 * aggregates, compression), `no-tsl`, `plain` (no TimescaleDB at all).
 */
const WHEN = /^--\s*@when\s+(timescaledb|tsl|no-tsl|plain)\s*$/m
// Any constant works; it serialises concurrent `migrate` runs on a server.
const LOCK_KEY = 7_414_240_001

export interface Migration {
  version: number
  name: string
  when: 'always' | 'timescaledb' | 'tsl' | 'no-tsl' | 'plain'
  sql: string
}

/** Every NNN-name.sql in the folder, in version order; duplicate versions refused. */
export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const out: Migration[] = []
  for (const file of (await readdir(dir)).sort()) {
    const m = FILE.exec(file)
    if (!m) continue
    const sql = await readFile(new URL(file, `file://${dir.endsWith('/') ? dir : `${dir}/`}`), 'utf8')
    const when = WHEN.exec(sql.split('\n', 1)[0] ?? '')?.[1] as Migration['when'] | undefined
    const version = Number(m[1])
    if (out.some((x) => x.version === version)) {
      throw new StoreError('GP_STORE_MIGRATION', `two migrations share version ${m[1]} (${file})`)
    }
    out.push({ version, name: m[2] ?? file, when: when ?? 'always', sql })
  }
  return out
}

/**
 * Applies what is pending, each migration in its own transaction together with
 * its row in schema_migrations. A migration for another flavour is recorded as skipped, so the version sequence stays gap-free.
 */
export interface Flavour {
  timescale: boolean
  /** TSL features usable (continuous aggregates, compression, policies). */
  tsl: boolean
}

export function appliesTo(when: Migration['when'], f: Flavour): boolean {
  switch (when) {
    case 'always':
      return true
    case 'timescaledb':
      return f.timescale
    case 'tsl':
      return f.tsl
    case 'no-tsl':
      return !f.tsl
    case 'plain':
      return !f.timescale
  }
}

export async function migrate(db: Db, flavourOrTimescale: Flavour | boolean, dir = MIGRATIONS_DIR): Promise<MigrationReport> {
  // A bare boolean (older callers) means "TimescaleDB present", TSL features off.
  const flavour = typeof flavourOrTimescale === 'boolean' ? { timescale: flavourOrTimescale, tsl: false } : flavourOrTimescale
  await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    skipped    boolean NOT NULL DEFAULT false,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`)
  const report: MigrationReport = { applied: [], skipped: [], alreadyApplied: 0 }
  for (const mig of await loadMigrations(dir)) {
    const label = `${String(mig.version).padStart(3, '0')}-${mig.name}`
    await db.transaction(async (tx) => {
      if (db.driver === 'pg') await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY])
      const done = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [mig.version])
      if (done.length > 0) {
        report.alreadyApplied++
        return
      }
      const skip = !appliesTo(mig.when, flavour)
      if (!skip) {
        try {
          await tx.exec(mig.sql)
        } catch (err) {
          throw new StoreError('GP_STORE_MIGRATION', `migration ${label} failed: ${(err as Error).message}`, { cause: err })
        }
      }
      await tx.query('INSERT INTO schema_migrations (version, name, skipped) VALUES ($1, $2, $3)', [mig.version, mig.name, skip])
      ;(skip ? report.skipped : report.applied).push(label)
    })
  }
  return report
}
