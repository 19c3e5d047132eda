import type { Command } from 'commander'
import { loadConfig } from '../../config/index.ts'
import { createLogger } from '../../logger.ts'
import { openStore } from '../../store/index.ts'

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('Apply pending database migrations (also done on every start); embedded database unless DATABASE_URL is set')
    .action(async () => {
      const config = loadConfig()
      const store = await openStore(config, createLogger(config.logLevel))
      try {
        const r = await store.migrate()
        const { driver, timescale } = store.capabilities
        process.stdout.write(`database: ${driver === 'pg' ? 'server' : `embedded (${config.dataDir})`}, TimescaleDB ${timescale ? 'yes' : 'no (plain tables)'}\n`)
        for (const m of r.applied) process.stdout.write(`applied ${m}\n`)
        for (const m of r.skipped) process.stdout.write(`skipped ${m} (not for this database flavour)\n`)
        process.stdout.write(`${r.applied.length} applied, ${r.alreadyApplied} already applied\n`)
      } finally {
        await store.close()
      }
    })
}
