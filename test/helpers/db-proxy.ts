// A TCP proxy in front of PostgreSQL on a loopback port, for database outages in tests.
// Not a test file.
import net from 'node:net'

export interface DbProxy {
  /** Starts listening (again on the same port after a cut); resolves with the port. */
  listen(): Promise<number>
  readonly port: number
  /** `target` with the proxy as its host: what the code under test connects to. */
  url(): string
  /** The outage: every connection reset, new ones refused (until listen() again). */
  cut(): Promise<void>
  /**
   * A hung database (a stalled network): no byte is forwarded any more either way, and
   * no connection is closed or reset — a client's FIN goes unanswered too; new
   * connections are accepted and never answered. Until cut().
   */
  stall(): void
}

export function dbProxy(target: URL): DbProxy {
  const sockets = new Set<net.Socket>()
  const pairs = new Set<[net.Socket, net.Socket]>()
  let server: net.Server | undefined
  let port = 0
  let stalled = false
  // Paused, a socket is not read: what its peer sends (a FIN too) stays unread.
  const hold = (s: net.Socket) => s.pause().on('error', () => s.destroy())
  return {
    listen: () =>
      new Promise<number>((resolve) => {
        server = net.createServer((c) => {
          if (stalled) return void sockets.add(hold(c))
          const up = net.connect(Number(target.port || 5432), target.hostname)
          sockets.add(c).add(up)
          const pair: [net.Socket, net.Socket] = [c, up]
          pairs.add(pair)
          c.pipe(up).pipe(c)
          const end = () => (c.destroy(), up.destroy(), pairs.delete(pair))
          c.on('error', end).on('close', end)
          up.on('error', end).on('close', end)
        })
        server.listen(port, '127.0.0.1', () => {
          port = (server?.address() as net.AddressInfo).port
          resolve(port)
        })
      }),
    get port() {
      return port
    },
    url() {
      const u = new URL(target)
      u.host = `127.0.0.1:${port}`
      return u.toString()
    },
    cut: () =>
      new Promise<void>((resolve) => {
        stalled = false
        for (const s of sockets) s.destroy()
        sockets.clear()
        pairs.clear()
        if (!server?.listening) return resolve()
        server.close(() => resolve())
      }),
    stall() {
      stalled = true
      for (const [c, up] of pairs) {
        c.unpipe(up)
        up.unpipe(c)
        hold(c)
        hold(up)
      }
    },
  }
}
