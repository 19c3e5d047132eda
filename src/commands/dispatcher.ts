// Downlink commands (DESIGN: commands to sleeping or offline devices are queued
// with a time-to-live and delivered when the device reconnects; their
// acknowledgement closes them — the store closes a command when its ack is written).
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { Counter, Histogram, type Registry } from 'prom-client'
import type { Broker, DownlinkReadyEvent, PresenceEvent } from '../../broker/index.ts'
import { encodeCommand, type Command, type CommandBody } from '../../firmware-protocol/index.ts'
import type { CommandRow, Store } from '../store/types.ts'
import { createClockSteps, type ClockEvidence, type StepSyncOutcome, type StepSyncRequest } from './clock-steps.ts'

export interface CommandServiceOptions {
  store: Pick<Store, 'commands' | 'clock'>
  broker: Pick<Broker, 'publishCommand' | 'on' | 'off'>
  log: Logger
  /** Time-sync metrics (syncs sent, offsets measured) are registered here when given. */
  registry?: Registry
  now?: () => number
  /** Default time-to-live of a queued command. */
  defaultTtlMs?: number
  /**
   * A device gets a time sync once its command subscription is in place, when its last estimate is older than
   * this, and again every this long while it stays online (default 6 h).
   */
  timeSyncEveryMs?: number
  /**
   * A sync measuring a larger |offset| than this is followed by a second one at the next poll (once): a device
   * that steps its clock right after acknowledging the first gets its later check-ins timed by the second
   * (PROTOCOL.md §6), not by the offset it no longer has (default 2 s).
   */
  timeSyncFollowUpMs?: number
  /** How often queued commands for online devices are delivered and old ones expired. */
  pollMs?: number
  /**
   * A device whose envelopes show its clock jumped forward gets a time sync at once (clock-steps.ts), at most
   * once per this long, so a clock that keeps jumping does not flood it with syncs (default 5 min).
   */
  stepSyncEveryMs?: number
  /** How far ahead of its latest measurement an envelope's clock may run before it counts as a step (default 10 s, clock-steps.ts). */
  clockStepToleranceMs?: number
}

export interface CommandService {
  /** Queues a command; delivered at once when the device is online on this node. */
  send(deviceId: string, body: CommandBody, opts?: { ttlMs?: number | null }): Promise<CommandRow>
  /** Delivers everything pending for a device (called when its command subscription is in place). */
  flush(deviceId: string): Promise<number>
  /** A message the ingest stored: its device time against its receipt shows a clock that jumped forward (clock-steps.ts). */
  observe(e: ClockEvidence): void
  /** Resolves once every message observed so far has been looked at. */
  observed(): Promise<void>
  close(): Promise<void>
}

export function createCommandService(o: CommandServiceOptions): CommandService {
  const now = o.now ?? Date.now
  const defaultTtl = o.defaultTtlMs ?? 24 * 3_600_000
  const syncEvery = o.timeSyncEveryMs ?? 6 * 3_600_000
  const followUpAbove = o.timeSyncFollowUpMs ?? 2_000
  const SYNC_TTL_MS = 60_000
  const log = o.log.child({ component: 'commands' })
  const metrics = o.registry && timeSyncMetrics(o.registry)
  // Devices whose command subscription is in place → the client id that holds it
  // (a takeover's late offline event for the old client must not remove the new one).
  const online = new Map<string, string>()
  const busy = new Map<string, Promise<number>>()
  // The last time sync sent to each online device, why (an expired_ahead one's expiry was moved
  // into a clock measured ahead: sendSync); `open`: its measurement not looked at yet.
  const syncs = new Map<string, { commandId: string; sentAt: number; reason: SyncReason; open: boolean }>()
  // When each device was last sent a step_suspected sync (kept across reconnects: the rate limit).
  const stepSyncs = new Map<string, number>()
  const stepSyncEvery = o.stepSyncEveryMs ?? 5 * 60_000

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

  async function send(deviceId: string, body: CommandBody, opts: { ttlMs?: number | null; reason?: SyncReason } = {}): Promise<CommandRow> {
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
    // every time sync, this service's or an operator's, is looked at for a follow-up (tendClocks)
    if (command.kind === 'time_sync') {
      const reason = opts.reason ?? 'operator'
      metrics?.sent.inc({ reason })
      syncs.set(deviceId, { commandId: command.commandId, sentAt: issuedMs, reason, open: true })
    }
    if (online.has(deviceId)) await flush(deviceId, true)
    return row
  }

  /**
   * `aheadMs`: how far the device's clock was measured ahead. The device judges `expires_ms` by its own
   * clock, so a clock ahead by more than the sync's life finds every sync expired and is never corrected:
   * its expiry is moved that far (PROTOCOL.md §6); a round trip over 30 s still gives no estimate.
   */
  async function sendSync(deviceId: string, reason: Exclude<SyncReason, 'operator'>, aheadMs = 0): Promise<void> {
    // t0 is taken now, at sending time: a time sync is never queued for later.
    const ttlMs = SYNC_TTL_MS + (reason === 'expired_ahead' ? Math.ceil(aheadMs) : 0)
    await send(deviceId, { kind: 'time_sync', timeSync: { serverTimeMs: now() } }, { ttlMs, reason })
  }

  async function onConnect(deviceId: string): Promise<void> {
    // What is pending first: queued, or sent to an earlier connection and not acknowledged. (After the
    // sync, this pass would deliver the sync a second time: send() delivers it at once, the device is online.)
    await flush(deviceId)
    const last = await o.store.clock.latest(deviceId)
    // a clock found to have jumped since its last measurement is measured again too
    if (!last || last.stepSuspectedAt || now() - last.measuredAt.getTime() > syncEvery) await sendSync(deviceId, 'connect')
    else syncs.set(deviceId, { commandId: last.commandId ?? '', sentAt: last.measuredAt.getTime(), reason: 'connect', open: false })
  }

  /**
   * A device's envelope showed its clock jumped forward since `r.estimate` (clock-steps.ts): a sync now
   * measures the new offset, unless one sent after that envelope's receipt already does, or the follow-up
   * of the estimate's own sync is due at the next poll, or one was sent for a step less than stepSyncEvery ago.
   */
  async function stepSync(r: StepSyncRequest): Promise<StepSyncOutcome> {
    if (!online.has(r.deviceId)) return 'offline' // its connect sync measures it (onConnect)
    const s = syncs.get(r.deviceId)
    if (s && s.sentAt > r.receivedAtMs) return 'measuring'
    if (s?.open && s.commandId === r.estimate.commandId && s.reason !== 'follow_up' && Math.abs(r.estimate.offsetMs) > followUpAbove) return 'measuring'
    const last = stepSyncs.get(r.deviceId)
    if (last !== undefined && now() - last < stepSyncEvery) return 'limited'
    stepSyncs.set(r.deviceId, now())
    await sendSync(r.deviceId, 'step_suspected')
    return 'sent'
  }
  const steps = createClockSteps({
    store: o.store,
    log: o.log,
    registry: o.registry,
    now,
    requestSync: stepSync,
    ...(o.clockStepToleranceMs !== undefined ? { toleranceMs: o.clockStepToleranceMs } : {}),
  })

  /** Per online device: a sync every syncEvery, and one follow-up after a sync that measured a large offset. */
  async function tendClocks(): Promise<void> {
    for (const [id, at] of stepSyncs) if (now() - at >= stepSyncEvery) stepSyncs.delete(id)
    const open = [...online.keys()].filter((id) => syncs.get(id)?.open === true)
    // one query for every sync awaiting its measurement (after a fleet-wide reconnect: thousands)
    const latest = new Map((await o.store.clock.latestOf(open)).map((e) => [e.deviceId, e]))
    for (const deviceId of [...online.keys()]) {
      const s = syncs.get(deviceId)
      if (!s) continue // its connect is being handled
      if (now() - s.sentAt > syncEvery) {
        await sendSync(deviceId, 'periodic')
        continue
      }
      if (!s.open) continue
      const last = latest.get(deviceId)
      if (last?.commandId === s.commandId) {
        s.open = false
        metrics?.offset.observe(Math.abs(last.offsetMs) / 1000)
        if (Math.abs(last.offsetMs) <= followUpAbove) continue
        const offsetMs = Math.round(last.offsetMs)
        if (last.offsetMs > 0 && (await o.store.commands.get(s.commandId))?.ackStatus === 'expired') {
          // Its clock is so far ahead that it judged the sync expired and did not apply it.
          if (s.reason === 'expired_ahead') log.warn({ deviceId, offsetMs }, 'the device judged a time sync expired although its expiry allowed for its clock; the periodic sync tries again')
          else {
            log.info({ deviceId, offsetMs }, 'the device judged a time sync expired by its clock, which runs ahead; one more with its expiry moved as far')
            await sendSync(deviceId, 'expired_ahead', last.offsetMs)
          }
        } else if (s.reason !== 'follow_up') {
          log.info({ deviceId, offsetMs }, 'large clock offset measured; a follow-up time sync learns whether the device corrected it')
          await sendSync(deviceId, 'follow_up')
        }
      } else if (now() - s.sentAt > SYNC_TTL_MS) s.open = false // never acknowledged: the next periodic sync
    }
  }

  // Delivery starts when the device's command subscription exists, not at CONNECT:
  // a clean-session device subscribes after its CONNACK, and a command published
  // in between would be dropped by the broker yet marked sent (a time sync lost).
  const onPresence = (ev: PresenceEvent) => {
    if (!ev.online && online.get(ev.deviceId) === ev.clientId) {
      online.delete(ev.deviceId)
      syncs.delete(ev.deviceId)
    }
  }
  const onReady = (ev: DownlinkReadyEvent) => {
    online.set(ev.deviceId, ev.clientId)
    onConnect(ev.deviceId).catch((err: unknown) => log.warn({ err, deviceId: ev.deviceId }, 'command delivery on connect failed'))
  }
  o.broker.on('presence', onPresence)
  o.broker.on('downlink-ready', onReady)

  let polling = false // a slow pass is not overlapped by the next (it would send a second sync)
  const timer = setInterval(() => {
    if (polling) return
    polling = true
    void (async () => {
      const expired = await o.store.commands.expire(now())
      if (expired) log.info({ expired }, 'commands expired unacknowledged')
      for (const id of [...online.keys()]) await flush(id, true)
      await tendClocks()
    })()
      .catch((err: unknown) => log.warn({ err }, 'command poll failed'))
      .finally(() => (polling = false))
  }, o.pollMs ?? 5_000)
  timer.unref()

  return {
    send,
    flush: (id) => flush(id),
    observe: (e) => steps.observe(e),
    observed: () => steps.idle(),
    async close() {
      clearInterval(timer)
      await steps.close()
      o.broker.off('presence', onPresence)
      o.broker.off('downlink-ready', onReady)
      await Promise.allSettled([...busy.values()])
    },
  }
}

/**
 * Why a time sync was sent: at a connect, periodically while online, to follow a large offset up, to a clock ahead
 * past the sync's life, to a clock whose envelopes showed it jumped forward (clock-steps.ts), or by an operator
 * (CommandService.send).
 */
type SyncReason = 'connect' | 'periodic' | 'follow_up' | 'expired_ahead' | 'step_suspected' | 'operator'

/** What an operator watches to know the fleet's clocks: syncs sent and the offsets they measure. */
function timeSyncMetrics(registry: Registry) {
  const registers = [registry]
  return {
    sent: new Counter({
      name: 'gridpatrol_time_syncs_total',
      help: 'Time syncs sent to devices, by reason (connect, periodic, follow_up: after a large offset, expired_ahead: to a clock ahead past the sync\'s life, step_suspected: to a clock found to have jumped forward, operator)',
      labelNames: ['reason'],
      registers,
    }),
    offset: new Histogram({
      name: 'gridpatrol_time_sync_offset_seconds',
      help: "|device clock − server clock| measured by the time syncs this node sent (PROTOCOL.md §6); a device's later check-ins are timed with it",
      buckets: [0.1, 0.5, 2, 10, 60, 300, 3600, 86_400],
      registers,
    }),
  }
}
