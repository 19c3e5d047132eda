import type { Command } from 'commander'
import { loadConfig } from '../../config/index.ts'
import { createLogger } from '../../logger.ts'
import { io } from '../io.ts'
import { serveCommands } from '../remote.ts'

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('Run everything in one process: broker, ingest, rules and API (embedded database unless DATABASE_URL is set)')
    .action(async () => {
      const config = loadConfig(io().env)
      const log = createLogger(config.logLevel)
      // loaded here, not at the top: the broker, API and ingest are only `start`'s (every other command starts faster)
      const { start } = await import('../../main.ts')
      const app = await start(config, log)
      // embedded: other `gridpatrol` commands run here, on this process's database (remote.ts)
      const control =
        config.databaseUrl === undefined
          ? await serveCommands({ dataDir: config.dataDir, store: app.store, log, run: (await import('../index.ts')).run }).catch((err: unknown) => {
              log.warn({ err }, 'no control socket: other commands are refused while this server runs')
              return undefined
            })
          : undefined
      let stopping = false
      const stop = (signal: string) => {
        if (stopping) {
          log.warn({ signal }, 'second signal: exiting now')
          process.exit(130)
        }
        stopping = true
        log.info({ signal }, 'shutting down')
        Promise.resolve(control?.close())
          .then(() => app.close())
          .then(
            () => process.exit(0),
            (err: unknown) => {
              log.error({ err }, 'shutdown failed')
              process.exit(1)
            },
          )
      }
      process.on('SIGINT', () => stop('SIGINT'))
      process.on('SIGTERM', () => stop('SIGTERM'))
    })
}
