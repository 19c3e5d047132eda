import type { Command } from 'commander'
import { loadConfig } from '../../config/index.ts'
import { createLogger } from '../../logger.ts'
import { openStore } from '../../store/index.ts'
import { io } from '../io.ts'
import { serveCommands } from '../remote.ts'

interface Options {
  broker: string
  clientId: string
  username?: string
  password?: string
  topicPrefix?: string
  rules: boolean
}

/**
 * The ingest as a client of an external broker (Mosquitto, EMQX): the same
 * pipeline as `start`, acking each message only after its commit. The external
 * broker must authenticate devices and restrict each to its own topics
 * (ingest/README.md).
 */
export function registerIngest(program: Command): void {
  program
    .command('ingest')
    .description('Run the ingest (and the rules) as a client of an external MQTT broker; PUBACK after commit')
    .requiredOption('--broker <url>', 'external broker, e.g. mqtt://mosquitto:1883')
    .option('--client-id <id>', 'fixed client id of the persistent session', 'gridpatrol-ingest')
    .option('--username <name>', 'user name on the external broker')
    .option('--password <secret>', 'password on the external broker (or GRIDPATROL_INGEST_PASSWORD)')
    .option('--topic-prefix <prefix>', "prefix in front of gp/v1/... on that broker (e.g. a mount point 'site-a/')")
    .option('--no-rules', 'do not run the rules scheduler in this process')
    .action(async (o: Options) => {
      const config = loadConfig(io().env)
      const log = createLogger(config.logLevel)
      const [{ Registry }, { connectExternal, createIngest }, { createRulesEngine }] = await Promise.all([import('prom-client'), import('../../../ingest/index.ts'), import('../../rules/scheduler.ts')])
      const registry = new Registry()
      const store = await openStore(config, log)
      await store.migrate()
      const ingest = createIngest({ store, log, registry, options: { closeTimeoutMs: config.shutdownGraceMs } })
      const password = o.password ?? io().env['GRIDPATROL_INGEST_PASSWORD']
      const external = await connectExternal(ingest, {
        url: o.broker,
        clientId: o.clientId,
        log,
        closeTimeoutMs: config.shutdownGraceMs,
        ...(o.username ? { username: o.username } : {}),
        ...(password ? { password } : {}),
        ...(o.topicPrefix ? { topicPrefix: o.topicPrefix } : {}),
      })
      const rules = o.rules ? createRulesEngine({ store, log }) : undefined
      await rules?.start()
      // embedded: other `gridpatrol` commands run here, on this process's database (remote.ts)
      const control =
        config.databaseUrl === undefined
          ? await serveCommands({ dataDir: config.dataDir, store, log, run: (await import('../index.ts')).run }).catch((err: unknown) => {
              log.warn({ err }, 'no control socket: other commands are refused while this process runs')
              return undefined
            })
          : undefined
      log.info({ broker: o.broker, clientId: o.clientId, rules: o.rules }, 'external ingest running')
      let stopping = false
      const stop = async (signal: string) => {
        if (stopping) process.exit(130)
        stopping = true
        log.info({ signal }, 'shutting down')
        // in order, with start's watchdog: a server database that stops answering does not hold the stop
        const { closeParts } = await import('../../main.ts')
        await closeParts(
          [
            ['control', async () => control?.close()],
            ['rules', async () => rules?.stop()],
            ['external', () => external.close().then(() => undefined)],
            ['ingest', () => ingest.close().then(() => undefined)],
            ['store', () => store.close()],
          ],
          { close: () => store.close(), ...(store.capabilities.driver === 'pg' ? { ping: () => store.ping() } : {}) },
          log,
          config.shutdownGraceMs,
        )
        process.exit(0)
      }
      process.on('SIGINT', () => void stop('SIGINT'))
      process.on('SIGTERM', () => void stop('SIGTERM'))
    })
}
