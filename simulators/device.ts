// A simulated device as a state machine over a Clock and a Transport. It owns the
// protocol duties every device has (PROTOCOL.md): sequence numbers that survive
// reboots, QoS 1 with re-send until PUBACK, store-and-forward batches of ≤ 500
// ascending items with seq 0, alarms sent live, presence, command acks and time
// sync. Patrol devices and sensors add what they publish on top.
import {
  MAX_BATCH_ITEMS,
  PRESENCE_ONLINE,
  commandTopic,
  decodeCommand,
  encodeUplink,
  encodeUplinkUnchecked,
  presenceTopic,
  uplinkTopic,
  type Command,
  type CommandAck,
  type Uplink,
  type UplinkBody,
} from '../firmware-protocol/index.ts'
import { DeviceClock, type Clock, type TimerId } from './clock.ts'
import type { Transport } from './transport.ts'

/** What the device keeps in non-volatile memory: survives reboots. */
export interface DeviceState {
  deviceId: string
  /** The next sequence number to use (starts at 1, never reused). */
  nextSeq: number
  bootCount: number
  /** Envelopes created and not yet acknowledged, ascending by seq. */
  outbox: Uplink[]
}

export type Delivery = 'live' | 'batch'

/** Everything a device did, for the ground truth; all times are true times. */
export interface DeviceObserver {
  /** An envelope was created (before any send). */
  created?(device: Device, env: Uplink, trueMs: number): void
  /** The device got the PUBACK for it: it now believes it delivered. */
  delivered?(device: Device, env: Uplink, via: Delivery, trueMs: number): void
  event?(device: Device, kind: string, trueMs: number, detail?: Record<string, unknown>): void
}

/** Deliberate protocol violations, for the conformance kit's self-tests. */
export interface DeviceQuirks {
  /** Publish under this device id instead of our own (identity). */
  topicDeviceId?: string
  /** Forget the counter on every reconnect and start again at 1. */
  resetSeqOnReconnect?: boolean
  /** Give batch envelopes this seq instead of 0. */
  batchSeq?: number
  /** Upload batch items in descending seq order. */
  unorderedBatch?: boolean
  /** Never acknowledge commands. */
  ignoreCommands?: boolean
  /** Publish uplinks with QoS 0. */
  qos0?: boolean
  /** Never publish the retained "online" presence. */
  noPresence?: boolean
  /** Ack an expired time_sync without received_device_time_ms (t1). */
  expiredSyncWithoutT1?: boolean
}

export interface DeviceOptions {
  clock: Clock
  transport: Transport
  /** Restored state (after a process restart), or a fresh one. */
  state?: DeviceState
  deviceId: string
  firmwareVersion?: string
  heartbeatIntervalS?: number
  lowBatteryPct?: number
  clockDriftPpm?: number
  clockOffsetMs?: number
  /** A time sync is applied when the device clock is off by more than this (default 2000). */
  timeSyncThresholdMs?: number
  observer?: DeviceObserver
  quirks?: DeviceQuirks
  /** Called after every state change worth persisting (e.g. to write a state file). */
  persist?: (state: DeviceState) => void
}

export function freshState(deviceId: string): DeviceState {
  return { deviceId, nextSeq: 1, bootCount: 0, outbox: [] }
}

export class Device {
  readonly id: string
  readonly state: DeviceState
  readonly deviceClock: DeviceClock
  protected readonly clock: Clock
  protected readonly transport: Transport
  protected readonly observer: DeviceObserver
  protected readonly quirks: DeviceQuirks
  heartbeatIntervalS: number
  reportIntervalS = 300
  lowBatteryPct: number
  batteryPct = 100
  signalDbm = -75
  readonly firmwareVersion: string
  /** Powered and running (false after stop() or a dead battery). */
  running = false
  protected bootedAtMs = 0
  private inflight = new Set<number>()
  private heartbeat: TimerId | undefined
  private duplicateNext = 0
  private bootStatusPending = false
  private readonly syncThresholdMs: number
  private readonly persistFn: ((s: DeviceState) => void) | undefined
  stats = { created: 0, published: 0, acked: 0, failed: 0, batches: 0, commands: 0, duplicates: 0 }

  constructor(opts: DeviceOptions) {
    this.id = opts.deviceId
    this.clock = opts.clock
    this.transport = opts.transport
    this.state = opts.state ?? freshState(opts.deviceId)
    this.observer = opts.observer ?? {}
    this.quirks = opts.quirks ?? {}
    this.heartbeatIntervalS = opts.heartbeatIntervalS ?? 300
    this.lowBatteryPct = opts.lowBatteryPct ?? 20
    this.firmwareVersion = opts.firmwareVersion ?? 'gp-sim/1.0'
    this.deviceClock = new DeviceClock(this.clock, opts.clockDriftPpm ?? 0, opts.clockOffsetMs ?? 0)
    this.syncThresholdMs = opts.timeSyncThresholdMs ?? 2000
    this.persistFn = opts.persist
  }

  get online(): boolean {
    return this.transport.online
  }

  /** Envelopes waiting for a PUBACK (buffered offline or in flight). */
  get backlog(): number {
    return this.state.outbox.length
  }

  /** Power on: boot, connect, start the heartbeat. */
  start(): void {
    if (this.running) return
    this.running = true
    this.state.bootCount++
    this.bootedAtMs = this.clock.now()
    this.bootStatusPending = true
    this.persist()
    this.event('boot', { bootCount: this.state.bootCount })
    this.transport.start({
      onOnline: () => this.onOnline(),
      onOffline: (reason) => this.event('offline', { reason }),
      onCommand: (p) => this.onCommand(p),
    })
    this.scheduleHeartbeat()
    this.onStart()
  }

  /** Power off: timers stop, the link drops; the state (outbox, seq) is kept. */
  stop(): void {
    if (!this.running) return
    this.running = false
    this.clock.clearTimeout(this.heartbeat)
    this.onStop()
    this.transport.setReachable(false)
    this.inflight.clear()
  }

  /** Reboot: power off, back on after `downMs`; seq and outbox survive (flash). */
  reboot(downMs = 20_000): void {
    this.event('reboot', { downMs })
    this.stop()
    this.clock.setTimeout(() => {
      this.transport.setReachable(true)
      this.start()
    }, downMs)
  }

  /** Network coverage lost/regained (store-and-forward in between). */
  setNetwork(up: boolean): void {
    this.transport.setReachable(up)
  }

  /** The next `n` live sends are published twice (the server must dedup). */
  duplicateSends(n: number): void {
    this.duplicateNext += n
  }

  /** Creates the next envelope and sends it live, or buffers it while offline. */
  emit(body: UplinkBody): Uplink {
    const env = { seq: this.state.nextSeq++, deviceTimeMs: this.deviceClock.now(), ...body } as Uplink
    this.stats.created++
    this.state.outbox.push(env)
    this.persist()
    this.observer.created?.(this, env, this.clock.now())
    if (this.online) this.sendLive(env)
    return env
  }

  protected event(kind: string, detail?: Record<string, unknown>): void {
    this.observer.event?.(this, kind, this.clock.now(), detail)
  }

  protected onStart(): void {}
  protected onStop(): void {}
  protected statusExtras(): Partial<Extract<UplinkBody, { kind: 'status' }>['status']> {
    return {}
  }

  protected persist(): void {
    this.persistFn?.(this.state)
  }

  private topic(kind: Uplink['kind']): string {
    return uplinkTopic(this.quirks.topicDeviceId ?? this.id, kind)
  }

  private encode(env: Uplink): Uint8Array {
    return this.quirks.batchSeq !== undefined || this.quirks.unorderedBatch ? encodeUplinkUnchecked(env) : encodeUplink(env)
  }

  private qos(): 0 | 1 {
    return this.quirks.qos0 ? 0 : 1
  }

  private sendLive(env: Uplink): void {
    this.inflight.add(env.seq)
    const payload = this.encode(env)
    const topic = this.topic(env.kind)
    this.stats.published++
    this.transport.publish(topic, payload, { qos: this.qos() }, (err) => this.settled([env], 'live', err))
    if (this.duplicateNext > 0) {
      this.duplicateNext--
      this.stats.duplicates++
      this.event('duplicate_send', { seq: env.seq })
      this.transport.publish(topic, payload, { qos: this.qos() }, () => {})
    }
  }

  private sendBatch(items: Uplink[]): void {
    for (const it of items) this.inflight.add(it.seq)
    const ordered = this.quirks.unorderedBatch ? [...items].reverse() : items
    const env: Uplink = { seq: this.quirks.batchSeq ?? 0, deviceTimeMs: this.deviceClock.now(), kind: 'batch', batch: { items: ordered } }
    this.stats.published++
    this.stats.batches++
    this.transport.publish(this.topic('batch'), this.encode(env), { qos: this.qos() }, (err) => this.settled(items, 'batch', err))
  }

  private settled(envs: Uplink[], via: Delivery, err: Error | undefined): void {
    for (const e of envs) this.inflight.delete(e.seq)
    if (err) {
      this.stats.failed++
      return // stays in the outbox: re-sent on reconnect
    }
    this.stats.acked++
    const done = new Set(envs.map((e) => e.seq))
    const before = this.state.outbox.length
    this.state.outbox = this.state.outbox.filter((e) => !done.has(e.seq))
    if (this.state.outbox.length !== before) this.persist()
    const now = this.clock.now()
    for (const e of envs) this.observer.delivered?.(this, e, via, now)
  }

  private onOnline(): void {
    if (this.quirks.resetSeqOnReconnect && this.stats.published > 0) this.state.nextSeq = 1
    this.event('online')
    if (!this.quirks.noPresence) this.transport.publish(presenceTopic(this.id), Buffer.from(PRESENCE_ONLINE), { qos: 1, retain: true }, () => {})
    this.flush()
    if (this.bootStatusPending) {
      this.bootStatusPending = false
      this.sendStatus() // a status right after boot: battery, firmware, boot count
    }
  }

  /** Re-sends the outbox: alarms live (never only in a batch), the rest in batches. */
  private flush(): void {
    const waiting = this.state.outbox.filter((e) => !this.inflight.has(e.seq))
    const rest: Uplink[] = []
    for (const e of waiting) {
      if (e.kind === 'alarm') this.sendLive(e)
      else rest.push(e)
    }
    // PROTOCOL.md: a batch holds 1..500 items ascending by seq; split larger backlogs.
    for (let i = 0; i < rest.length; i += MAX_BATCH_ITEMS) this.sendBatch(rest.slice(i, i + MAX_BATCH_ITEMS))
  }

  private scheduleHeartbeat(): void {
    this.clock.clearTimeout(this.heartbeat)
    this.heartbeat = this.clock.setTimeout(() => {
      if (!this.running) return
      this.sendStatus()
      this.scheduleHeartbeat()
    }, this.heartbeatIntervalS * 1000)
  }

  sendStatus(): void {
    this.emit({
      kind: 'status',
      status: {
        batteryPct: Math.max(0, Math.round(this.batteryPct)),
        signalDbm: this.signalDbm,
        firmwareVersion: this.firmwareVersion,
        uptimeS: Math.floor((this.clock.now() - this.bootedAtMs) / 1000),
        bufferedCount: this.state.outbox.length,
        bootCount: this.state.bootCount,
        ...this.statusExtras(),
      },
    })
  }

  private onCommand(payload: Uint8Array): void {
    const t1 = this.deviceClock.now()
    const r = decodeCommand(payload)
    if (!r.ok) {
      this.event('bad_command', { error: r.error.message })
      return // without a command id there is nothing to acknowledge
    }
    const cmd = r.value
    this.stats.commands++
    this.event('command', { commandId: cmd.commandId, kind: cmd.kind })
    if (this.quirks.ignoreCommands || !this.running) return
    const ack: CommandAck = { commandId: cmd.commandId, status: 'ok', receivedDeviceTimeMs: t1 }
    // PROTOCOL.md §6: expiry is judged by the device clock.
    if (cmd.expiresMs > 0 && t1 > cmd.expiresMs) {
      // With t1 (§6): the server measures the clock offset from an expired time sync's ack too.
      const omitT1 = this.quirks.expiredSyncWithoutT1 && cmd.kind === 'time_sync'
      this.emit({ kind: 'ack', ack: omitT1 ? { commandId: cmd.commandId, status: 'expired' } : { ...ack, status: 'expired' } })
      return
    }
    const apply = this.apply(cmd, ack)
    this.emit({ kind: 'ack', ack })
    apply?.() // after the ack: t1 and t2 (the ack's envelope time) are read on the same clock
  }

  private apply(cmd: Command, ack: CommandAck): (() => void) | undefined {
    switch (cmd.kind) {
      case 'ping':
        if (cmd.ping.nonceHex) ack.nonceHex = cmd.ping.nonceHex
        return undefined
      case 'config': {
        const c = cmd.config
        if (c.heartbeatIntervalS !== undefined) this.heartbeatIntervalS = c.heartbeatIntervalS
        if (c.reportIntervalS !== undefined) this.reportIntervalS = c.reportIntervalS
        if (c.lowBatteryPct !== undefined) this.lowBatteryPct = c.lowBatteryPct
        return () => {
          this.scheduleHeartbeat()
          this.onConfig()
        }
      }
      case 'time_sync': {
        const t0 = cmd.timeSync.serverTimeMs
        const error = (ack.receivedDeviceTimeMs ?? 0) - t0
        if (Math.abs(error) <= this.syncThresholdMs) return undefined
        return () => {
          this.deviceClock.set(t0)
          this.event('clock_set', { toMs: t0, errorMs: error, cause: 'time_sync' })
        }
      }
    }
  }

  protected onConfig(): void {}

  /** Alarm helper: sent live when online, otherwise the first thing after reconnect. */
  raiseAlarm(kind: 'sos' | 'tamper' | 'man_down' | 'low_battery', extra: { detail?: string; badgeId?: string; lat?: number; lon?: number } = {}): Uplink {
    const fix = extra.lat !== undefined && extra.lon !== undefined ? { lat: extra.lat, lon: extra.lon, accuracyM: 8 } : undefined
    return this.emit({ kind: 'alarm', alarm: { kind, ...(fix ? { fix } : {}), ...(extra.badgeId ? { badgeId: extra.badgeId } : {}), ...(extra.detail ? { detail: extra.detail } : {}) } })
  }

  /** The command topic this device listens on (for tests and tools). */
  get commandTopic(): string {
    return commandTopic(this.id)
  }
}
