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
}

export function dbProxy(target: URL): DbProxy {
  const sockets = new Set<net.Socket>()
  let server: net.Server | undefined
  let port = 0
  return {
    listen: () =>
      new Promise<number>((resolve) => {
        server = net.createServer((c) => {
          const up = net.connect(Number(target.port || 5432), target.hostname)
          sockets.add(c).add(up)
          c.pipe(up).pipe(c)
          const end = () => (c.destroy(), up.destroy())
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
        for (const s of sockets) s.destroy()
        sockets.clear()
        if (!server?.listening) return resolve()
        server.close(() => resolve())
      }),
  }
}
