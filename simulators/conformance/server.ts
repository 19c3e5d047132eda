// The conformance kit's own MQTT server: plain aedes (no gridpatrol broker/, so
// vendors run it standalone) that accepts one device's credentials and records
// every CONNECT, SUBSCRIBE and PUBLISH it sees, and can drop, refuse and command it.
import { createServer, type Server } from 'node:net'
import type { AddressInfo } from 'node:net'
import { Aedes, type Client } from 'aedes'
import { commandTopic } from '../../firmware-protocol/index.ts'

export interface ConnectRecord {
  session: number
  atMs: number
  clientId: string
  username: string | undefined
  passwordOk: boolean
  clean: boolean
  will: { topic: string; payload: Buffer; qos: number; retain: boolean } | undefined
  refused?: string
}

export interface PublishRecord {
  session: number
  atMs: number
  clientId: string
  topic: string
  payload: Buffer
  qos: number
  retain: boolean
  /** Published by the broker on the client's behalf (its last will). */
  will: boolean
}

export interface SubscribeRecord {
  session: number
  atMs: number
  topic: string
  qos: number
}

export interface Recording {
  connects: ConnectRecord[]
  publishes: PublishRecord[]
  subscribes: SubscribeRecord[]
  /** Commands the kit sent, with when. */
  commands: { atMs: number; commandId: string; kind: string; payload: Buffer; expectStatus?: string; nonceHex?: string }[]
  /** Marks in the script (phase starts), in order. */
  marks: { atMs: number; name: string }[]
}

export interface ConformanceServer {
  port: number
  recording: Recording
  /** Accept (true) or refuse (false, CONNACK 5 "not authorized") new connections. */
  accepting: boolean
  /** Closes the device's connection from the server side (its will must fire). */
  dropDevice(): boolean
  deviceConnected(): boolean
  sendCommand(payload: Uint8Array): Promise<void>
  /** Resolves when `pred` holds (checked after every recorded event) or rejects after `ms`. */
  waitFor(pred: () => boolean, ms: number): Promise<boolean>
  close(): Promise<void>
}

export async function startConformanceServer(opts: { deviceId: string; secret: string; port?: number; host?: string }): Promise<ConformanceServer> {
  const rec: Recording = { connects: [], publishes: [], subscribes: [], commands: [], marks: [] }
  let session = 0
  let current: Client | undefined
  const waiters = new Set<() => void>()
  const poke = () => {
    for (const w of [...waiters]) w()
  }
  const state = { accepting: true }
  const closing = new WeakSet<Client>()

  const broker = await Aedes.createBroker({
    preConnect(client, packet, cb) {
      const pw = packet.password ? Buffer.from(packet.password).toString() : undefined
      rec.connects.push({
        session: ++session,
        atMs: Date.now(),
        clientId: packet.clientId,
        username: packet.username,
        passwordOk: pw === opts.secret,
        clean: packet.clean ?? true,
        will: packet.will ? { topic: packet.will.topic, payload: Buffer.from(packet.will.payload), qos: packet.will.qos ?? 0, retain: packet.will.retain ?? false } : undefined,
      })
      poke()
      cb(null, true)
    },
    authenticate(client, username, password, cb) {
      const last = rec.connects[rec.connects.length - 1]!
      const refuse = (why: string, code: 4 | 5) => {
        last.refused = why
        poke()
        cb(Object.assign(new Error(why), { returnCode: code }), false)
      }
      if (!state.accepting) return refuse('the kit is simulating no network coverage', 5)
      if (username !== opts.deviceId || password?.toString() !== opts.secret) return refuse('wrong username or password', 4)
      cb(null, true)
    },
    authorizePublish(client, packet, cb) {
      const payload = Buffer.from(packet.payload)
      const will = client !== null && closing.has(client)
      rec.publishes.push({ session, atMs: Date.now(), clientId: client?.id ?? '', topic: packet.topic, payload, qos: packet.qos, retain: packet.retain, will })
      poke()
      cb(null)
    },
    authorizeSubscribe(client, sub, cb) {
      rec.subscribes.push({ session, atMs: Date.now(), topic: sub.topic, qos: sub.qos })
      poke()
      cb(null, sub)
    },
  })
  broker.on('client', (c) => {
    current = c
  })
  broker.on('clientDisconnect', (c) => {
    if (c === current) current = undefined
    poke()
  })
  const server: Server = createServer(broker.handle)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, opts.host ?? '0.0.0.0', () => resolve())
  })

  return {
    port: (server.address() as AddressInfo).port,
    recording: rec,
    get accepting() {
      return state.accepting
    },
    set accepting(v: boolean) {
      state.accepting = v
    },
    dropDevice() {
      const c = current
      if (!c) return false
      closing.add(c)
      c.close()
      return true
    },
    deviceConnected: () => current !== undefined && !current.closed,
    sendCommand(payload) {
      return new Promise((resolve, reject) =>
        broker.publish({ cmd: 'publish', topic: commandTopic(opts.deviceId), payload: Buffer.from(payload), qos: 1, retain: false, dup: false }, (err) => (err ? reject(err) : resolve())),
      )
    },
    waitFor(pred, ms) {
      if (pred()) return Promise.resolve(true)
      return new Promise((resolve) => {
        const check = () => {
          if (!pred()) return
          done(true)
        }
        const timer = setTimeout(() => done(false), ms)
        const done = (v: boolean) => {
          clearTimeout(timer)
          waiters.delete(check)
          resolve(v)
        }
        waiters.add(check)
      })
    },
    async close() {
      for (const w of [...waiters]) w()
      await new Promise<void>((r) => broker.close(() => r()))
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}
