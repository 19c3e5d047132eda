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
}

export interface ExternalIngest {
  readonly client: MqttClient
  close(): Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * The ingest as a client of an external broker: a persistent session
 * (clean: false) subscribed at QoS 1 to every device uplink and presence topic.
 * DESIGN: ack after commit — mqtt.js writes the PUBACK only when
 * handleMessage's callback runs, so it is called after the commit; a message
 * whose commit keeps failing is retried with backoff and never acknowledged,
 * and the broker redelivers it to the session after a reconnect.
 */
export async function connectExternal(ingest: Ingest, opts: ExternalIngestOptions): Promise<ExternalIngest> {
  const log = opts.log.child({ component: 'ingest-external' })
  const retry = opts.retry ?? { initialMs: 100, maxMs: 5000 }
  let closing = false
  const client = mqtt.connect(opts.url, {
    clientId: opts.clientId,
    clean: false,
    reconnectPeriod: 1000,
    ...(opts.username !== undefined ? { username: opts.username } : {}),
    ...(opts.password !== undefined ? { password: opts.password } : {}),
  })

  client.handleMessage = (packet: IPublishPacket, done: (err?: Error) => void) => {
    void handle(packet).then(
      () => done(),
      (err: unknown) => done(err as Error),
    )
  }

  async function handle(packet: IPublishPacket): Promise<void> {
    const topic = packet.topic
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
        await sleep(backoff)
        backoff = Math.min(retry.maxMs, backoff * 2)
      }
    }
  }

  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
  })
  const root = `${TOPIC_ROOT}/${PROTOCOL_VERSION}/+`
  await client.subscribeAsync({ [`${root}/up/+`]: { qos: 1 }, [presenceTopic('+')]: { qos: 1 } })
  log.info({ url: opts.url, clientId: opts.clientId }, 'external ingest subscribed')
  return {
    client,
    async close() {
      closing = true
      await client.endAsync()
    },
  }
}
