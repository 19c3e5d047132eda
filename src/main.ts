// Composition root: config → store → ingest → broker → commands → rules → api;
// closed in reverse. The only place the parts meet.
import { Counter, Registry, collectDefaultMetrics } from 'prom-client'
import { createBroker, type Broker } from '../broker/index.ts'
import { createIngest, type IngestStored } from '../ingest/index.ts'
import { openSerialGateway } from '../ingest/serial-gateway.ts'
import { buildApp } from './api/app.ts'
import { createCommandService, type CommandService } from './commands/dispatcher.ts'
import type { Config } from './config/index.ts'
import { createStoreDirectory } from './devices/directory.ts'
import { startRevocationSweep } from './devices/revocation.ts'
import type { Logger } from './logger.ts'
import { createRulesEngine } from './rules/scheduler.ts'
import { openStore } from './store/index.ts'
import type { Store } from './store/types.ts'

export interface Running {
  /** Bound ports (useful with port 0). */
  readonly ports: { mqtt: number; mqtts?: number; ws?: number; http: number }
  readonly broker: Broker
  /** The open store (tests read what the running system wrote through it). */
  readonly store: Store
  /** Downlink commands (time syncs, config, ping) to the devices connected here. */
  readonly commands: CommandService
  close(): Promise<void>
}

export interface StartOptions {
  /** Rules scheduler on (default); tests of other parts may turn it off. */
  rules?: boolean
  /**
   * The server clock: receipt times stamped on uplinks and presence, the ingest's,
   * the commands' (time sync) and the rules' now (default: the wall clock). Tests
   * run simulated days on it.
   */
  now?: () => number
  /** How often the command service looks for commands to send and acks to follow up (default 5 s; tests shorten it). */
  commandPollMs?: number
}

/** Below this, retention drops check-ins a plan still credits by default (maxUploadDelayHours 168, plus the day). */
const MIN_USEFUL_RETENTION_DAYS = 8

/** What shutdown gives the work in flight by default (GRIDPATROL_SHUTDOWN_GRACE_SECONDS): the fronts' grace (broker, serial lines), the ingest's and the store's. */
const SHUTDOWN_GRACE_MS = 5_000

/** Whether the database answers a ping within a second. */
async function answers(ping: Promise<void>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 1_000)))
  try {
    return await Promise.race([ping.then(() => true, () => false), late])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Closes the parts in order (the store is one of them, named 'store'). A hung database (a
 * stalled connection) holds every part that waits for one of its queries (an HTTP request,
 * a rules pass, a revocation sweep), and the parts after it. Not all closed a second after
 * the fronts' grace (which runs from the start: a front in its grace is no hang), and the
 * database not answering a ping either, they have the store closed under them: after its
 * own grace it ends the connections, the queries fail, the parts finish. A database that
 * answers is not hung: a part still working on it (a long rules pass, a query waiting for
 * another session's lock) is waited for, and asked again later. Without `store.ping` (the
 * embedded database runs in this process and cannot hang on a network) nothing is forced.
 */
export async function closeParts(
  parts: ReadonlyArray<readonly [string, () => Promise<void>]>,
  store: { close: () => Promise<void>; ping?: (() => Promise<void>) | undefined } | undefined,
  log: Logger,
  graceMs = SHUTDOWN_GRACE_MS,
): Promise<void> {
  let closing = ''
  let watchdog: NodeJS.Timeout | undefined
  const watch = () => {
    watchdog = setTimeout(() => {
      const ping = store?.ping
      if (!store || !ping || closing === 'store' || closing === '') return
      void answers(ping()).then((ok) => {
        if (closing === 'store' || closing === '') return
        if (ok) return watch()
        log.warn({ part: closing, graceMs }, `shutdown: ${closing} not closed after the ${graceMs} ms grace and the database does not answer: closing the store under it`)
        store.close().catch(() => undefined) // its error is the store closer's to log
      })
    }, graceMs + 1_000)
  }
  watch()
  try {
    for (const [name, close] of parts) {
      closing = name
      try {
        await close()
      } catch (err) {
        log.error({ err, part: name }, 'close failed')
      }
    }
  } finally {
    closing = ''
    clearTimeout(watchdog)
  }
}

export async function start(config: Config, log: Logger, opts: StartOptions = {}): Promise<Running> {
  const closers: Array<[string, () => Promise<void>]> = []
  let storeParts: { close: () => Promise<void>; ping?: () => Promise<void> } | undefined
  const graceMs = config.shutdownGraceMs
  const closeAll = () => closeParts([...closers].reverse(), storeParts, log, graceMs)
  try {
    const registry = new Registry()
    collectDefaultMetrics({ register: registry })

    const store = await openStore(config, log)
    storeParts = { close: () => store.close(), ...(store.capabilities.driver === 'pg' ? { ping: () => store.ping() } : {}) }
    closers.push(['store', storeParts.close])
    const migrated = await store.migrate()
    if (migrated.applied.length) log.info({ applied: migrated.applied }, 'migrations applied')
    const { retentionDays } = config.storage
    if (retentionDays > 0 && retentionDays < MIN_USEFUL_RETENTION_DAYS) {
      log.warn(
        { retentionDays, minimum: MIN_USEFUL_RETENTION_DAYS },
        `GRIDPATROL_RETENTION_DAYS=${retentionDays} is shorter than the plans' default upload delay (7 days) plus the day itself: ` +
          'check-ins of store-and-forward uploads that late are dropped, and the days they belong to are no longer evaluated (README, "Reports outlive check-ins")',
      )
    }

    // Every stored message goes to the commands' clock-step check (created below, with the broker).
    const clockSteps: { observe?: (m: IngestStored) => void } = {}
    const ingest = createIngest({ store, log, registry, options: { closeTimeoutMs: graceMs }, onStored: (m) => clockSteps.observe?.(m), ...(opts.now ? { now: opts.now } : {}) })
    closers.push(['ingest', () => ingest.close()])
    const clock = opts.now
    const sink = clock ? { commit: (m: Parameters<typeof ingest.commit>[0]) => ingest.commit({ ...m, receivedAt: new Date(clock()) }) } : ingest

    // Docking cradles and RS-485 lines (PROTOCOL.md §7): the same pipeline; a frame
    // that names no device, or does not decode, is stored as a reject.
    const serialDropped = new Counter({
      name: 'gridpatrol_serial_frames_dropped_total',
      help: 'Serial frames dropped by the line (bad COBS or CRC, runt, oversize); the dock re-sends',
      labelNames: ['line', 'kind'],
      registers: [registry],
    })
    // Closed with the broker (below), at once: their grace periods run side by side.
    const serialLines: Array<() => Promise<void>> = []
    for (const line of config.serial) {
      const gw = await openSerialGateway({
        path: line.path,
        baudRate: line.baudRate,
        closeTimeoutMs: graceMs,
        commit: (m) => ingest.commit(m),
        onReject: (r) =>
          ingest.reject({ receivedAtMs: r.receivedAt.getTime(), topic: r.source, deviceId: null, payload: r.payload, code: r.code, message: r.message, ...(r.field ? { field: r.field } : {}) }),
        onLineError: (kind) => {
          serialDropped.inc({ line: line.path, kind })
          log.debug({ line: line.path, kind }, 'serial frame dropped')
        },
      }).catch((err: Error) => {
        throw new Error(`serial line ${line.path} (GRIDPATROL_SERIAL_PORTS): ${err.message}`)
      })
      let lineClosed: Promise<void> | undefined
      const closeLine = () =>
        (lineClosed ??= gw.close().then(({ notCommitted }) => {
          if (notCommitted > 0) {
            log.warn(
              { line: line.path, notCommitted },
              `shutdown: ${notCommitted} serial frame(s) received on ${line.path} and not committed (database unavailable?): the devices keep their buffers until the dock confirms the upload, dock them again`,
            )
          }
        }))
      closers.push([`serial ${line.path}`, closeLine])
      serialLines.push(closeLine)
      log.info({ line: line.path, baudRate: line.baudRate }, 'serial gateway open')
    }

    const broker = createBroker({
      directory: createStoreDirectory(store),
      sink,
      host: config.host,
      port: config.mqtt.port,
      tlsPort: config.mqtt.tlsPort,
      wsPort: config.mqtt.wsPort,
      ...(config.mqtt.tls ? { tls: config.mqtt.tls } : {}),
      allowAnonymous: config.mqtt.allowAnonymous,
      noDelay: config.mqtt.noDelay,
      limits: config.mqtt.limits,
      ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}),
      logger: log,
      registry,
      closeTimeoutMs: graceMs,
    })
    // Presence (connect, disconnect, will, keep-alive timeout) stored as device status.
    broker.on('presence', (ev) => ingest.presence(clock ? { ...ev, at: new Date(clock()) } : ev))
    const mqttPorts = await broker.listen()
    // The fronts (MQTT, serial lines) stop together, each giving the commits in flight its
    // grace (GRIDPATROL_SHUTDOWN_GRACE_SECONDS, 5 s) before the ingest stops retrying: a database outage holds shutdown that long.
    closers.push(['broker', async () => void (await Promise.all([broker.close(), ...serialLines.map((close) => close())]))])
    // `device disable` / `rotate-secret` (possibly from another process) reach connected devices.
    const revocation = startRevocationSweep({ store, broker, log, intervalMs: config.revokeCheckMs })
    closers.push(['revocation', () => revocation.stop()])

    const commands = createCommandService({ store, broker, log, registry, timeSyncEveryMs: config.timeSyncEveryMs, ...(clock ? { now: clock } : {}), ...(opts.commandPollMs ? { pollMs: opts.commandPollMs } : {}) })
    clockSteps.observe = (m) => commands.observe(m)
    closers.push(['commands', () => commands.close()])

    if (opts.rules !== false) {
      const rules = createRulesEngine({ store, log, registry, config: { runner: { keepProvisionalRevisions: config.keepProvisionalReports } }, ...(clock ? { now: clock } : {}) })
      await rules.start()
      closers.push(['rules', () => rules.stop()])
    }

    const app = await buildApp({ store, registry, log, info: () => ({ broker: { id: broker.id, mode: broker.mode, ports: mqttPorts } }) })
    await app.listen({ host: config.host, port: config.http.port }).catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'EADDRINUSE' ? new Error(`HTTP port ${config.http.port} is already in use: set GRIDPATROL_HTTP_PORT to a free port (0 = any)`) : err
    })
    closers.push([
      'api',
      async () => {
        // The requests in flight are answered; fastify ends only the connections idle when
        // close() begins, and a keep-alive one whose answer comes later would hold it open
        // until the client leaves (72 s): ended as soon as it is idle too.
        const closed = app.close()
        const idle = setInterval(() => app.server.closeIdleConnections(), 50)
        try {
          await closed
        } finally {
          clearInterval(idle)
        }
      },
    ])
    const address = app.server.address()
    const http = typeof address === 'object' && address ? address.port : config.http.port

    const ports = { ...mqttPorts, http }
    log.info({ ports, database: store.capabilities, cluster: broker.mode }, 'gridpatrol started')
    return { ports, broker, store, commands, close: closeAll }
  } catch (err) {
    await closeAll()
    throw err
  }
}
