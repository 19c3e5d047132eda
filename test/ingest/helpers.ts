// A real broker wired to a real ingest on a real store; registers teardown.
import mqtt, { type MqttClient } from 'mqtt'
import { Registry } from 'prom-client'
import { createBroker, generateSecret, hashSecret } from '../../broker/index.ts'
import { encodeUplink, uplinkTopic, type Uplink, type UplinkKind } from '../../firmware-protocol/index.ts'
import { createIngest, type Ingest } from '../../ingest/index.ts'
import { createStoreDirectory } from '../../src/devices/directory.ts'
import type { Store } from '../../src/store/types.ts'
import { silentLog } from '../helpers/store.ts'

interface Tap {
  teardown(fn: () => unknown): void
}

export interface Stack {
  url: string
  ingest: Ingest
  broker: ReturnType<typeof createBroker>
  /** Registers a device in the store; returns its secret. */
  device(id: string, gridId?: string | null): Promise<string>
}

export async function startStack(t: Tap, store: Store): Promise<Stack> {
  const ingest = createIngest({ store, log: silentLog, registry: new Registry(), options: { retry: { initialMs: 20, maxMs: 200 } } })
  const broker = createBroker({
    host: '127.0.0.1',
    port: 0,
    wsPort: null,
    directory: createStoreDirectory(store),
    sink: ingest,
    registry: new Registry(),
    commitRetry: { initialMs: 20, maxMs: 200 },
  })
  broker.on('presence', (ev) => ingest.presence(ev))
  const ports = await broker.listen()
  t.teardown(async () => {
    await broker.close()
    await ingest.close()
  })
  return {
    url: `mqtt://127.0.0.1:${ports.mqtt}`,
    ingest,
    broker,
    async device(id, gridId = null) {
      const secret = generateSecret()
      await store.devices.create({ id, kind: 'patrol', gridId, secretHash: await hashSecret(secret) })
      return secret
    },
  }
}

export function connectDevice(t: Tap, url: string, id: string, secret: string, extra: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { clientId: id, username: id, password: secret, reconnectPeriod: 0, protocolVersion: 4, ...extra })
  client.on('error', () => undefined)
  t.teardown(() => new Promise<void>((r) => client.end(true, {}, () => r())))
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client))
    client.once('close', () => reject(new Error('closed before CONNACK')))
  })
}

/** Publishes at QoS 1 and resolves on PUBACK. */
export function publish(client: MqttClient, topic: string, payload: Uint8Array): Promise<void> {
  return client.publishAsync(topic, Buffer.from(payload), { qos: 1 }).then(() => undefined)
}

export function up(client: MqttClient, deviceId: string, kind: UplinkKind, u: Uplink): Promise<void> {
  return publish(client, uplinkTopic(deviceId, kind), encodeUplink(u))
}
