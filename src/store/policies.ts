import type { Queryable } from './db.ts'

const COMPRESSED = ['check_ins', 'telemetry', 'device_status']
const RETAINED = ['check_ins', 'telemetry', 'device_status', 'alarms', 'device_presence']

export interface StoragePolicies {
  /** 0 = keep forever. */
  retentionDays: number
  /** 0 = never compress. */
  compressAfterDays: number
}

/**
 * Brings TimescaleDB's compression and retention jobs in line with the
 * configuration, idempotently (remove, then add when enabled). The jobs run on
 * a TimescaleDB server's background workers; embedded PGlite has none, so there
 * they are recorded but never run (documented in README).
 */
export async function applyPolicies(db: Queryable, p: StoragePolicies): Promise<void> {
  for (const table of COMPRESSED) {
    await db.query('SELECT remove_compression_policy($1::regclass, if_exists => true)', [table])
    if (p.compressAfterDays > 0) {
      await db.query(`SELECT add_compression_policy($1::regclass, make_interval(days => $2))`, [table, p.compressAfterDays])
    }
  }
  for (const table of RETAINED) {
    await db.query('SELECT remove_retention_policy($1::regclass, if_exists => true)', [table])
    if (p.retentionDays > 0) {
      await db.query('SELECT add_retention_policy($1::regclass, make_interval(days => $2))', [table, p.retentionDays])
    }
  }
}
