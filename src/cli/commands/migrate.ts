import type { Command } from 'commander'
import { loadConfig } from '../../config/index.ts'
import { createLogger } from '../../logger.ts'
import { openStore } from '../../store/index.ts'
import { io, out } from '../io.ts'

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('Apply pending database migrations (also done on every start); embedded database unless DATABASE_URL is set')
    .action(async () => {
      const config = loadConfig(io().env)
      const store = await openStore(config, createLogger(config.logLevel))
      try {
        const r = await store.migrate()
        const { driver, timescale } = store.capabilities
        out(`database: ${driver === 'pg' ? 'server' : `embedded (${config.dataDir})`}, TimescaleDB ${timescale ? 'yes' : 'no (plain tables)'}\n`)
        for (const m of r.applied) out(`applied ${m}\n`)
        for (const m of r.skipped) out(`skipped ${m} (not for this database flavour)\n`)
        out(`${r.applied.length} applied, ${r.alreadyApplied} already applied\n`)
      } finally {
        await store.close()
      }
    })
}
