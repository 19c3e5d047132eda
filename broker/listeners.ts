// The three ways in: MQTT over TCP, over TLS, over WebSocket. This is the only file
// that listens; each accepted connection gets its state and guards, then aedes.
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http'
import { Socket, createServer as createTcpServer, type Server } from 'node:net'
import type { Aedes, Client } from 'aedes'
import type { Duplex } from 'node:stream'
import { createServer as createTlsServer, type TLSSocket } from 'node:tls'
import { WebSocketServer, createWebSocketStream } from 'ws'
import { BrokerError } from './errors.ts'
import { guardPacketSize, makePacketSizeGuard } from './outgoing-queue.ts'
import { ClientState, type BrokerContext } from './context.ts'

export type ListenerName = 'mqtt' | 'mqtts' | 'ws'

export interface ListenerSpec {
  host: string
  port: number
  tlsPort?: number
  wsPort?: number
  tls?: { cert: string; key: string; ca?: string }
  noDelay: boolean
}

const ENV_VAR: Record<ListenerName, string> = { mqtt: 'GRIDPATROL_MQTT_PORT', mqtts: 'GRIDPATROL_MQTTS_PORT', ws: 'GRIDPATROL_WS_PORT' }
const LABEL: Record<ListenerName, string> = { mqtt: 'MQTT over TCP', mqtts: 'MQTT over TLS', ws: 'MQTT over WebSocket' }

export interface Listeners {
  listen(): Promise<Partial<Record<ListenerName, number>>>
  /** Stops accepting new connections; open ones continue. */
  stopAccepting(): void
  /** Destroys what is still open; resolves once every listener is closed. */
  close(): Promise<void>
  address(): Partial<Record<ListenerName, { address: string; port: number }>>
  bytesRead(): number
  bytesWritten(): number
}

export function createListeners(ctx: BrokerContext, spec: ListenerSpec): Listeners {
  const live = new Set<Socket>()
  let closedRead = 0
  let closedWritten = 0
  const sizeGuard = makePacketSizeGuard(ctx)
  const servers: Array<{ name: ListenerName; port: number; server: Server | HttpServer; wss?: WebSocketServer }> = []

  // Closed connections leave `live` (and the metrics) from aedes' own close of the
  // client (Client.prototype.close, wrapped once): no listener is added to the socket,
  // which would turn its 'close' listener into an array (~70 B per idle connection).
  const closeHook = (client: Client) => {
    const c = client as Client & { conn: Socket | Duplex; req?: { socket?: Socket } }
    const socket = c.conn instanceof Socket ? c.conn : c.req?.socket
    if (!socket || !live.delete(socket)) return
    closedRead += socket.bytesRead
    closedWritten += socket.bytesWritten
    ctx.metrics.connections.dec({ listener: ctx.clients.get(client)?.listener ?? 'mqtt' })
  }

  const accept = (name: ListenerName, conn: Duplex, socket: Socket, req?: IncomingMessage, certCN?: string) => {
    if (ctx.closing) {
      socket.destroy()
      return
    }
    live.add(socket)
    ctx.metrics.connections.inc({ listener: name })
    const st = new ClientState(name, certCN)
    const client = ctx.aedes.handle(conn, req)
    ctx.clients.set(client, st)
    onClientClose(ctx.aedes, client, closeHook)
    guardPacketSize(client, sizeGuard)
  }

  servers.push({ name: 'mqtt', port: spec.port, server: createTcpServer({ noDelay: spec.noDelay }, (s) => accept('mqtt', s, s)) })

  if (spec.tls && spec.tlsPort !== undefined) {
    let pem: { cert: Buffer; key: Buffer; ca?: Buffer }
    try {
      pem = { cert: readFileSync(spec.tls.cert), key: readFileSync(spec.tls.key), ...(spec.tls.ca ? { ca: readFileSync(spec.tls.ca) } : {}) }
    } catch (err) {
      throw new BrokerError('GP_BROKER_TLS_CONFIG', `cannot read TLS files (GRIDPATROL_TLS_CERT/GRIDPATROL_TLS_KEY/GRIDPATROL_TLS_CA): ${(err as Error).message}`, { cause: err })
    }
    // With a CA, client certificates are requested and verified; devices without one
    // still authenticate with their secret.
    const server = createTlsServer({ ...pem, noDelay: spec.noDelay, requestCert: pem.ca !== undefined, rejectUnauthorized: false }, (s: TLSSocket) => {
      let cn: string | undefined
      if (pem.ca && s.authorized) {
        const subjectCN = s.getPeerCertificate().subject?.CN
        cn = Array.isArray(subjectCN) ? subjectCN[0] : subjectCN
      }
      accept('mqtts', s, s, undefined, cn)
    })
    servers.push({ name: 'mqtts', port: spec.tlsPort, server })
  }

  if (spec.wsPort !== undefined) {
    const http = createHttpServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket only\n')
    })
    http.on('connection', (s: Socket) => s.setNoDelay(spec.noDelay))
    const wss = new WebSocketServer({
      server: http,
      maxPayload: ctx.limits.maxPacketBytes + 5, // the MQTT packet plus its fixed header
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
    })
    // ws re-emits the HTTP server's errors; listenOne reports them from the server.
    wss.on('error', () => undefined)
    wss.on('connection', (ws, req) => {
      const stream = createWebSocketStream(ws)
      stream.on('error', () => ws.terminate())
      accept('ws', stream, req.socket, req)
    })
    servers.push({ name: 'ws', port: spec.wsPort, server: http, wss })
  }

  const listenOne = (s: (typeof servers)[number]) =>
    new Promise<number>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE') {
          reject(new BrokerError('GP_BROKER_PORT_IN_USE', `${LABEL[s.name]} port ${s.port} on ${spec.host} is already in use; set ${ENV_VAR[s.name]} to a free port (0 = ephemeral)`, { cause: err }))
        } else {
          reject(new BrokerError('GP_BROKER_LISTEN', `${LABEL[s.name]} cannot listen on ${spec.host}:${s.port} (${err.code ?? err.message}); check ${ENV_VAR[s.name]} and GRIDPATROL_HOST`, { cause: err }))
        }
      }
      s.server.once('error', onError)
      s.server.listen(s.port, spec.host, () => {
        s.server.off('error', onError)
        const a = s.server.address()
        resolve(typeof a === 'object' && a ? a.port : s.port)
      })
    })

  const closeAll = () =>
    Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.wss?.close()
            if (!s.server.listening) return resolve()
            s.server.close(() => resolve())
            s.server.once('close', () => resolve())
          }),
      ),
    ).then(() => undefined)

  return {
    async listen() {
      const ports: Partial<Record<ListenerName, number>> = {}
      try {
        for (const s of servers) ports[s.name] = await listenOne(s)
      } catch (err) {
        for (const sock of live) sock.destroy()
        await closeAll()
        throw err
      }
      return ports
    },
    stopAccepting() {
      for (const s of servers) {
        s.wss?.close()
        if (s.server.listening) s.server.close()
      }
    },
    async close() {
      const closing = closeAll()
      for (const sock of live) sock.destroy()
      await closing
    },
    address() {
      const out: Partial<Record<ListenerName, { address: string; port: number }>> = {}
      for (const s of servers) {
        const a = s.server.address()
        if (a && typeof a === 'object') out[s.name] = { address: a.address, port: a.port }
      }
      return out
    },
    bytesRead: () => closedRead + [...live].reduce((n, s) => n + s.bytesRead, 0),
    bytesWritten: () => closedWritten + [...live].reduce((n, s) => n + s.bytesWritten, 0),
  }
}

const closeHooks = new WeakMap<object, (client: Client) => void>()
const wrappedClose = new WeakSet<object>()

/**
 * Runs `hook` whenever aedes closes one of `aedes`' clients (socket closed, error,
 * DISCONNECT, takeover, shutdown): aedes 1.2.0's Client.prototype.close, wrapped once
 * per process; clients of other brokers pass straight through.
 */
function onClientClose(aedes: Aedes, client: Client, hook: (client: Client) => void): void {
  closeHooks.set(aedes, hook)
  const proto = Object.getPrototypeOf(client) as { close(this: Client, done?: () => void): void }
  if (wrappedClose.has(proto)) return
  wrappedClose.add(proto)
  const close = proto.close
  proto.close = function (this: Client, done?: () => void) {
    const first = !this.closed
    close.call(this, done)
    if (first) closeHooks.get((this as unknown as { broker: object }).broker)?.(this)
  }
}
