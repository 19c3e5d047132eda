// Builds a real broker on ephemeral ports and real clients; each registers its teardown.
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { Registry } from 'prom-client'
import { createBroker, createMemoryDirectory, type BrokerOptions, type MemoryDirectory, type UplinkMessage, type UplinkSink } from '../../broker/index.ts'

export interface Tap {
  teardown(fn: () => unknown): void
}

/** A sink that records commits; `hold` delays them, `failures` makes the next N throw. */
export class RecordingSink implements UplinkSink {
  readonly committed: UplinkMessage[] = []
  hold = 0
  failures = 0
  attempts = 0
  async commit(msg: UplinkMessage): Promise<void> {
    this.attempts++
    if (this.hold > 0) await new Promise((r) => setTimeout(r, this.hold))
    if (this.failures > 0) {
      this.failures--
      throw new Error('database unavailable')
    }
    this.committed.push(msg)
  }
}

export interface TestBroker {
  broker: ReturnType<typeof createBroker>
  ports: { mqtt: number; mqtts?: number; ws?: number }
  directory: MemoryDirectory
  sink: RecordingSink
  url: string
  /** Registers a device and returns its secret. */
  device(id: string): Promise<string>
}

export async function startBroker(t: Tap, opts: Partial<BrokerOptions> = {}): Promise<TestBroker> {
  const directory = (opts.directory as MemoryDirectory | undefined) ?? createMemoryDirectory()
  const sink = (opts.sink as RecordingSink | undefined) ?? new RecordingSink()
  const broker = createBroker({ host: '127.0.0.1', port: 0, wsPort: null, registry: new Registry(), commitRetry: { initialMs: 20, maxMs: 100 }, ...opts, directory, sink })
  const ports = await broker.listen()
  t.teardown(() => broker.close())
  return { broker, ports, directory, sink, url: `mqtt://127.0.0.1:${ports.mqtt}`, device: (id) => directory.addDevice({ deviceId: id }) }
}

/** Connects an mqtt.js client (no reconnects) and waits for CONNACK; rejects with the CONNACK error. */
export function connect(t: Tap, url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, ...opts })
  t.teardown(() => new Promise<void>((r) => client.end(true, {}, () => r())))
  // Protocol errors (e.g. a refused SUBACK) are asserted through callbacks; an
  // 'error' event without a listener would crash the test process.
  client.on('error', () => undefined)
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client))
    client.once('error', (err) => reject(err))
    client.once('close', () => reject(new Error('closed before CONNACK')))
  })
}

/** Connects as a registered device (username = client id = device id). */
export function connectDevice(t: Tap, tb: TestBroker, deviceId: string, secret: string, opts: IClientOptions = {}): Promise<MqttClient> {
  return connect(t, tb.url, { clientId: deviceId, username: deviceId, password: secret, ...opts })
}

export function publish(client: MqttClient, topic: string, payload: string | Buffer, qos: 0 | 1 = 1): Promise<void> {
  return new Promise((resolve, reject) => client.publish(topic, payload, { qos }, (err) => (err ? reject(err) : resolve())))
}

/** Subscribes; resolves with the granted QoS or the SUBACK failure code (0x80). */
export function subscribe(client: MqttClient, topic: string, qos: 0 | 1 = 1): Promise<number> {
  return new Promise((resolve, reject) =>
    client.subscribe(topic, { qos }, (err, granted) => {
      const e = err as { code?: number; packet?: { granted?: number[] } } | null
      const code = e?.code ?? e?.packet?.granted?.[0]
      if (err) return typeof code === 'number' ? resolve(code) : reject(err)
      resolve(granted?.[0]?.qos ?? -1)
    }),
  )
}

export function nextMessage(client: MqttClient, timeoutMs = 3000): Promise<{ topic: string; payload: Buffer; retain: boolean }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message')), timeoutMs)
    client.once('message', (topic, payload, packet) => {
      clearTimeout(timer)
      resolve({ topic, payload, retain: packet.retain })
    })
  })
}

export function closed(client: MqttClient, timeoutMs = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    if (!client.connected) return resolve(true)
    const timer = setTimeout(() => resolve(false), timeoutMs)
    client.once('close', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

export const delay = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** CONNACK return code carried by an mqtt.js connect error. */
export function connackCode(err: unknown): number | undefined {
  return (err as { code?: number }).code
}
