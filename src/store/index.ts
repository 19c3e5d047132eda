import type { Config } from '../config/index.ts'
import type { Logger } from '../logger.ts'
import type { Db } from './db.ts'
import { migrate, type Flavour } from './migrate.ts'
import { applyPolicies } from './policies.ts'
import { checkpointQueries, deviceQueries, gridQueries } from './queries/reference.ts'
import { alarmQueries, checkInQueries, deviceStateQueries, telemetryQueries } from './queries/series.ts'
import { clockQueries, commandQueries, rejectQueries } from './queries/commands.ts'
import { uplinkQueries } from './queries/uplinks.ts'
import { coverageQueries, reportQueries, watermarkQueries } from './queries/coverage.ts'
import { caseQueries } from './queries/cases.ts'
import { planQueries, rulesConfigQueries } from './queries/plans.ts'
import { rulesInputQueries } from './queries/rules-inputs.ts'
import type { Store } from './types.ts'

export type { Store } from './types.ts'
export { estimateClockOffset } from './clock-offset.ts'

export type StoreConfig = Pick<Config, 'dataDir' | 'databaseUrl'> & {
  storage?: Config['storage']
  /** Server pool size (default 8). */
  poolSize?: number
  /** How long close() lets the server database's queries in flight finish (GRIDPATROL_SHUTDOWN_GRACE_SECONDS; default 5000 ms). */
  shutdownGraceMs?: Config['shutdownGraceMs']
}

/**
 * Opens the configured store: the server database when `databaseUrl` is set,
 * else embedded PGlite + TimescaleDB in `dataDir`. Call `migrate()` before use.
 */
export async function openStore(config: StoreConfig, log: Logger): Promise<Store> {
  const started = Date.now()
  const { db, timescale, tsl } = config.databaseUrl
    ? // each driver's library is loaded only when it is used (PGlite's ≈ 0.3 s on every CLI command against a server)
      await (await import('./drivers/pg.ts')).openPg(config.databaseUrl, log, {
        ...(config.poolSize ? { max: config.poolSize } : {}),
        ...(config.shutdownGraceMs ? { closeGraceMs: config.shutdownGraceMs } : {}),
      })
    : await (await import('./drivers/pglite.ts')).openPglite(config.dataDir)
  if (!timescale) {
    log.warn(
      { driver: db.driver },
      'TimescaleDB is not available: running on plain PostgreSQL tables (no hypertables, continuous aggregates, compression or retention; same query answers)',
    )
  }
  else if (!tsl) {
    log.info({ driver: db.driver }, 'TimescaleDB without TSL features: hypertables only (no continuous aggregate, compression or retention jobs)')
  }
  log.info({ driver: db.driver, timescale, tsl, ms: Date.now() - started }, 'store opened')
  return buildStore(db, { timescale, tsl }, config.storage ?? { retentionDays: 0, compressAfterDays: 7 })
}

function buildStore(db: Db, flavour: Flavour, storage: NonNullable<StoreConfig['storage']>): Store {
  const { timescale, tsl } = flavour
  let closed: Promise<void> | undefined
  return {
    capabilities: { timescale, driver: db.driver },
    async migrate() {
      const report = await migrate(db, flavour)
      if (tsl) await applyPolicies(db, storage)
      return report
    },
    async ping() {
      await db.query('SELECT 1')
    },
    close: () => (closed ??= db.close()),
    grids: gridQueries(db),
    checkpoints: checkpointQueries(db),
    devices: deviceQueries(db),
    uplinks: uplinkQueries(db, storage.retentionDays),
    checkIns: checkInQueries(db),
    telemetry: telemetryQueries(db),
    devicesState: deviceStateQueries(db),
    alarms: alarmQueries(db),
    commands: commandQueries(db),
    clock: clockQueries(db),
    rejects: rejectQueries(db),
    plans: planQueries(db),
    coverage: coverageQueries(db),
    reports: reportQueries(db),
    cases: caseQueries(db),
    rulesConfig: rulesConfigQueries(db),
    watermark: watermarkQueries(db),
    rulesInputs: rulesInputQueries(db),
    async analyze() {
      // The server's autovacuum keeps planner statistics; PGlite runs no background
      // workers, so without this its planner never has any.
      if (db.driver !== 'pglite') return false
      await db.exec('ANALYZE')
      // ...nor vacuums: the space of replaced provisional report revisions (reports.saveMany) is made reusable here
      await db.exec('VACUUM coverage_reports')
      return true
    },
    async refreshAggregates(from, to) {
      if (!tsl) return // a plain view is always current
      await db.query('CALL refresh_continuous_aggregate($1::regclass, $2::timestamptz, $3::timestamptz)', [
        'checkpoint_visits_hourly',
        from,
        to,
      ])
    },
  }
}
