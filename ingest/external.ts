import { setTimeout as delay } from 'node:timers/promises'
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt'
import { parseTopic, presenceTopic, PRESENCE_ONLINE, TOPIC_ROOT, PROTOCOL_VERSION } from '../firmware-protocol/index.ts'
import type { Logger } from 'pino'
import type { Ingest } from './index.ts'

export interface ExternalIngestOptions {
  /** e.g. mqtt://127.0.0.1:1883 (Mosquitto, EMQX). */
  url: string
  /** Fixed client id: the persistent session that holds QoS 1 messages while the ingest is down. */
  clientId: string
  username?: string
  password?: string
  log: Logger
  /** Backoff while the database is unreachable (the PUBACK is withheld meanwhile). */
  retry?: { initialMs: number; maxMs: number }
  /**
   * Prefix in front of the protocol's topics on that broker (a Mosquitto
   * `mount_point` or bridge prefix, e.g. `site-a/`); stripped before parsing.
   * Default none.
   */
  topicPrefix?: string
  /**
   * Messages committing at once without their PUBACK (they share group
   * commits). Past it the next packet is not read until one completes, which
   * slows the socket. Default 256; the broker's own in-flight limit (Mosquitto
   * `max_inflight_messages`, default 20) usually binds first.
   */
  maxInFlight?: number
  /** How long close() lets the commits in flight finish, their PUBACKs following them (GRIDPATROL_SHUTDOWN_GRACE_SECONDS; default 5000 ms). */
  closeTimeoutMs?: number
}

export interface ExternalIngest {
  readonly client: MqttClient
  close(): Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** How long close() lets the commits in flight finish by default (their PUBACKs follow them). */
const CLOSE_GRACE_MS = 5_000

/** Passed to mqtt.js' handleMessage callback: "go on to the next packet, do not write the PUBACK". */
const DEFERRED = new Error('PUBACK deferred until commit')

interface Unacked {
  messageId: number
  committed: boolean
}

/**
 * The ingest as a client of an external broker: a persistent session
 * (clean: false) subscribed at QoS 1 to every device uplink and presence topic.
 *
 * DESIGN: ack after commit, several messages in flight. mqtt.js handles
 * incoming packets one at a time and writes a QoS 1 PUBACK when
 * handleMessage's callback runs without an error; an error makes it go on to
 * the next packet without a PUBACK (mqtt 5.16, pinned). So handleMessage starts
 * the commit, calls back with DEFERRED at once (up to maxInFlight), and the
 * PUBACK is written here once the message's own commit has resolved — in the
 * order the PUBLISHes arrived, as MQTT requires of a client [MQTT-4.6.0-2]: a
 * committed message waits for the earlier ones, which commit in the same or an
 * earlier group anyway. A message whose commit keeps failing is retried with
 * backoff and never acknowledged; after a reconnect the broker redelivers
 * whatever was not acknowledged (committed or not: dedup makes it once).
 *
 * Identity: this mode has no device authentication of its own. The device id
 * is the one in the topic (`gp/v1/{deviceId}/up/{kind}`), which must be a
 * registered, enabled device; the external broker's ACL must ensure a device
 * can publish only under its own id (Mosquitto: `pattern write gp/v1/%u/up/#`
 * with per-device credentials). A payload naming another device is rejected.
 */
export async function connectExternal(ingest: Ingest, opts: ExternalIngestOptions): Promise<ExternalIngest> {
  const log = opts.log.child({ component: 'ingest-external' })
  const retry = opts.retry ?? { initialMs: 100, maxMs: 5000 }
  const prefix = opts.topicPrefix ?? ''
  const maxInFlight = Math.max(1, opts.maxInFlight ?? 256)
  let closing = false
  const client = mqtt.connect(opts.url, {
    clientId: opts.clientId,
    clean: false,
    reconnectPeriod: 1000,
    ...(opts.username !== undefined ? { username: opts.username } : {}),
    ...(opts.password !== undefined ? { password: opts.password } : {}),
  })
  // mqtt.js keeps _sendPacket private; it is what its own PUBACK goes through.
  const send = (packet: { cmd: 'puback'; messageId: number }) => (client as unknown as { _sendPacket(p: object): void })._sendPacket(packet)

  // PUBACKs owed on the current connection, in arrival order. A new connection
  // starts a new list: the broker redelivers what the old one did not ack.
  let unacked: Unacked[] = []
  let inFlight = 0
  let waiting: (() => void) | undefined
  // Aborted at close: retries' backoff sleeps end and they give up.
  const stopping = new AbortController()
  const backoffSleep = (ms: number) => delay(ms, undefined, { signal: stopping.signal }).catch(() => undefined)
  client.on('close', () => {
    unacked = []
  })

  const flush = (list: Unacked[]) => {
    if (list !== unacked || !client.connected) return
    while (list.length > 0 && (list[0] as Unacked).committed) send({ cmd: 'puback', messageId: (list.shift() as Unacked).messageId })
  }

  client.handleMessage = (packet: IPublishPacket, next: (err?: Error) => void) => {
    const entry: Unacked | undefined = packet.qos > 0 && packet.messageId !== undefined ? { messageId: packet.messageId, committed: false } : undefined
    const list = unacked
    if (entry) list.push(entry)
    inFlight++
    void handle(packet)
      .then(
        () => {
          if (!entry) return
          entry.committed = true
          flush(list)
        },
        // Given up at close: counted in close()'s one line, not a line per message.
        (err: unknown) => log.debug({ err: (err as Error).message, topic: packet.topic }, 'not committed while closing: not acknowledged'),
      )
      .finally(() => {
        inFlight--
        const w = waiting
        waiting = undefined
        w?.()
      })
    const goOn = () => (entry ? next(DEFERRED) : next())
    if (inFlight < maxInFlight) goOn()
    else waiting = goOn
  }

  async function handle(packet: IPublishPacket): Promise<void> {
    const topic = packet.topic.startsWith(prefix) ? packet.topic.slice(prefix.length) : packet.topic
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
    const t = parseTopic(topic)
    const receivedAt = new Date()
    let backoff = retry.initialMs
    for (;;) {
      try {
        if (t.ok && t.direction === 'presence') {
          ingest.presence({ deviceId: t.deviceId, online: payload.toString() === PRESENCE_ONLINE, reason: 'external', at: receivedAt })
          return
        }
        // Topics outside the scheme are rejected by the codec with GP_PROTO_TOPIC, raw bytes kept.
        const deviceId = t.ok ? t.deviceId : ''
        const kind = t.ok && t.direction === 'up' ? t.kind : 'checkin'
        await ingest.ingest({ deviceId, kind, topic, payload, receivedAt })
        return
      } catch (err) {
        if (closing) throw err
        log.warn({ err: (err as Error).message, retryInMs: backoff }, 'commit failed: PUBACK withheld, retrying')
        await backoffSleep(backoff)
        if (closing) throw err
        backoff = Math.min(retry.maxMs, backoff * 2)
      }
    }
  }

  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
  })
  const root = `${prefix}${TOPIC_ROOT}/${PROTOCOL_VERSION}/+`
  await client.subscribeAsync({ [`${root}/up/+`]: { qos: 1 }, [`${prefix}${presenceTopic('+')}`]: { qos: 1 } })
  log.info({ url: opts.url, clientId: opts.clientId, topicPrefix: prefix }, 'external ingest subscribed')
  return {
    client,
    async close() {
      if (closing) return
      closing = true
      // Retries waiting in their backoff give up now; the commits in flight get
      // the grace period to finish and their PUBACKs go out. What is still owed
      // then is never acknowledged: the broker redelivers it to the next session.
      stopping.abort()
      const graceMs = opts.closeTimeoutMs ?? CLOSE_GRACE_MS
      for (let waited = 0; waited < graceMs && inFlight > 0; waited += 50) await sleep(50)
      const owed = unacked.length
      await client.endAsync()
      if (owed > 0) {
        log.warn(
          { unacknowledged: owed, graceMs },
          `shutdown: ${owed} message(s) left unacknowledged, not committed by the end of the ${graceMs} ms grace (database unavailable?): ` +
            'the broker redelivers them to the next session, and each is stored once',
        )
      }
    },
  }
}
