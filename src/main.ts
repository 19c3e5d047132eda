import type { Config } from './config/index.ts'
import type { Logger } from './logger.ts'

export interface Running {
  close(): Promise<void>
}

/**
 * Composition root: config → store → ingest → broker → rules → api; closed in
 * reverse. Each part is added here as it lands.
 */
export async function start(config: Config, log: Logger): Promise<Running> {
  const closers: Array<() => Promise<void>> = []
  log.info({ dataDir: config.dataDir, database: config.databaseUrl ? 'server' : 'embedded' }, 'gridpatrol started')
  return {
    async close() {
      for (const c of closers.reverse()) await c()
    },
  }
}
