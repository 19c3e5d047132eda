// Downlink commands (DESIGN: commands to sleeping or offline devices are queued
// with a time-to-live and delivered when the device reconnects; their
// acknowledgement closes them — the store closes a command when its ack is written).
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { Broker, DownlinkReadyEvent, PresenceEvent } from '../../broker/index.ts'
import { encodeCommand, type Command, type CommandBody } from '../../firmware-protocol/index.ts'
import type { CommandRow, Store } from '../store/types.ts'

export interface CommandServiceOptions {
  store: Pick<Store, 'commands' | 'clock'>
  broker: Pick<Broker, 'publishCommand' | 'on' | 'off'>
  log: Logger
  now?: () => number
  /** Default time-to-live of a queued command. */
  defaultTtlMs?: number
  /** A device gets a time sync once its command subscription is in place, when its last estimate is older than this. */
  timeSyncEveryMs?: number
  /** How often queued commands for online devices are delivered and old ones expired. */
  pollMs?: number
}

export interface CommandService {
  /** Queues a command; delivered at once when the device is online on this node. */
  send(deviceId: string, body: CommandBody, opts?: { ttlMs?: number | null }): Promise<CommandRow>
  /** Delivers everything pending for a device (called when its command subscription is in place). */
  flush(deviceId: string): Promise<number>
  close(): Promise<void>
}

export function createCommandService(o: CommandServiceOptions): CommandService {
  const now = o.now ?? Date.now
  const defaultTtl = o.defaultTtlMs ?? 24 * 3_600_000
  const syncEvery = o.timeSyncEveryMs ?? 6 * 3_600_000
  const log = o.log.child({ component: 'commands' })
  // Devices whose command subscription is in place → the client id that holds it
  // (a takeover's late offline event for the old client must not remove the new one).
  const online = new Map<string, string>()
  const busy = new Map<string, Promise<number>>()

  async function deliver(rows: CommandRow[]): Promise<number> {
    const sent: string[] = []
    for (const row of rows) {
      try {
        await o.broker.publishCommand(row.deviceId, Buffer.from(encodeCommand(row.body as unknown as Command)))
        sent.push(row.commandId)
      } catch (err) {
        log.warn({ err, deviceId: row.deviceId, commandId: row.commandId }, 'command delivery failed; stays queued')
      }
    }
    await o.store.commands.markSent(sent, now())
    return sent.length
  }

  function flush(deviceId: string, onlyQueued = false): Promise<number> {
    // One delivery pass per device at a time keeps command order.
    const prev = busy.get(deviceId) ?? Promise.resolve(0)
    const next = prev
      .catch(() => 0)
      .then(async () => {
        const rows = await o.store.commands.pending(deviceId, now())
        return deliver(onlyQueued ? rows.filter((r) => r.status === 'queued') : rows)
      })
    busy.set(deviceId, next)
    void next.finally(() => busy.get(deviceId) === next && busy.delete(deviceId)).catch(() => undefined)
    return next
  }

  async function send(deviceId: string, body: CommandBody, opts: { ttlMs?: number | null } = {}): Promise<CommandRow> {
    const issuedMs = now()
    const ttl = opts.ttlMs === undefined ? defaultTtl : opts.ttlMs
    const command = { commandId: randomUUID(), issuedMs, expiresMs: ttl === null ? 0 : issuedMs + ttl, ...body } as Command
    encodeCommand(command) // validates before anything is queued
    const row = await o.store.commands.enqueue({
      commandId: command.commandId,
      deviceId,
      kind: command.kind,
      body: command as unknown as Record<string, unknown>,
      issuedAtMs: issuedMs,
      expiresAtMs: ttl === null ? null : issuedMs + ttl,
    })
    if (online.has(deviceId)) await flush(deviceId, true)
    return row
  }

  async function onConnect(deviceId: string): Promise<void> {
    const last = await o.store.clock.latest(deviceId)
    if (!last || now() - last.measuredAt.getTime() > syncEvery) {
      // t0 is taken now, at sending time: a time sync is never queued for later.
      await send(deviceId, { kind: 'time_sync', timeSync: { serverTimeMs: now() } }, { ttlMs: 60_000 })
    }
    await flush(deviceId)
  }

  // Delivery starts when the device's command subscription exists, not at CONNECT:
  // a clean-session device subscribes after its CONNACK, and a command published
  // in between would be dropped by the broker yet marked sent (a time sync lost).
  const onPresence = (ev: PresenceEvent) => {
    if (!ev.online && online.get(ev.deviceId) === ev.clientId) online.delete(ev.deviceId)
  }
  const onReady = (ev: DownlinkReadyEvent) => {
    online.set(ev.deviceId, ev.clientId)
    onConnect(ev.deviceId).catch((err: unknown) => log.warn({ err, deviceId: ev.deviceId }, 'command delivery on connect failed'))
  }
  o.broker.on('presence', onPresence)
  o.broker.on('downlink-ready', onReady)

  const timer = setInterval(() => {
    void (async () => {
      const expired = await o.store.commands.expire(now())
      if (expired) log.info({ expired }, 'commands expired unacknowledged')
      for (const id of [...online.keys()]) await flush(id, true)
    })().catch((err: unknown) => log.warn({ err }, 'command poll failed'))
  }, o.pollMs ?? 5_000)
  timer.unref()

  return {
    send,
    flush: (id) => flush(id),
    async close() {
      clearInterval(timer)
      o.broker.off('presence', onPresence)
      o.broker.off('downlink-ready', onReady)
      await Promise.allSettled([...busy.values()])
    },
  }
}
