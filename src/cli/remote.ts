// Commands while `gridpatrol start` holds the embedded database.
//
// An embedded data directory belongs to one process (PGlite has no locking of its own). So the
// running server listens on a Unix socket in that directory, and a command that needs the
// database while the server holds it is run by the server, on its open store, with the
// caller's arguments, environment and working directory; its output and exit status come back.
// The socket is the owner's only (mode 0600, in the data directory), like the database files.
//
// Wire format, one JSON object per line. Request: { argv, env, cwd, tty } (argv without node and
// the script). Reply: { o: text } / { e: text } as the command writes, then { exit: status }.
import { chmod, unlink } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import type { Logger } from '../logger.ts'
import type { Store } from '../store/types.ts'
import { io, type CliIo } from './io.ts'

/** The control socket of the server holding this data directory. */
export const controlSocket = (dataDir: string): string => join(dataDir, 'gridpatrol.sock')

/** Longest Unix socket path Linux accepts (sun_path, 108 bytes with the terminating NUL). */
const MAX_SOCKET_PATH = 107

/** Thrown by withStore when another process holds the data directory and answers on its socket: run() forwards the command there. */
export class HeldByServer extends Error {
  constructor(
    readonly socketPath: string,
    /** The lock's refusal: what the command says when the server does not answer. */
    readonly held: Error,
  ) {
    super(held.message)
  }
}

interface Request {
  argv: string[]
  env: Record<string, string>
  cwd: string
  tty: boolean
}

export interface CommandServer {
  readonly path: string
  close(): Promise<void>
}

/**
 * Serves commands on `store` at the data directory's socket (`start`, embedded only). Returns
 * undefined, with a warning, when the path is too long for a Unix socket.
 */
export async function serveCommands(opts: {
  dataDir: string
  store: Store
  log: Logger
  run: (argv: string[], cliIo: CliIo) => Promise<number>
}): Promise<CommandServer | undefined> {
  const path = controlSocket(opts.dataDir)
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    opts.log.warn({ path }, 'data directory path too long for a control socket: commands are refused while this server runs')
    return undefined
  }
  // a socket left by a killed server (we hold the directory's lock: no live server owns it)
  await unlink(path).catch(() => undefined)
  const active = new Set<net.Socket>()
  const server = net.createServer((sock) => {
    active.add(sock)
    sock.on('close', () => active.delete(sock))
    sock.on('error', () => undefined) // the caller went away (Ctrl-C): the command still completes
    let buf = ''
    let started = false
    sock.setEncoding('utf8')
    sock.on('data', (chunk: string) => {
      if (started) return
      buf += chunk
      const nl = buf.indexOf('\n')
      if (nl < 0) {
        if (buf.length > 1_000_000) sock.destroy()
        return
      }
      started = true
      const send = (m: object) => {
        if (!sock.destroyed) sock.write(JSON.stringify(m) + '\n')
      }
      let req: Request
      try {
        req = parseRequest(buf.slice(0, nl))
      } catch (err) {
        send({ e: `gridpatrol: bad request on the control socket: ${(err as Error).message}\n` })
        send({ exit: 1 })
        sock.end()
        return
      }
      // the command's name only: its arguments may hold secrets
      opts.log.debug({ command: req.argv.filter((a) => !a.startsWith('-')).slice(0, 2).join(' ') }, 'command from the control socket')
      opts
        .run([process.execPath, 'gridpatrol', ...req.argv], {
          stdout: { write: (o: string) => send({ o }), isTTY: req.tty },
          stderr: { write: (e: string) => send({ e }) },
          env: req.env,
          cwd: req.cwd,
          store: async () => opts.store,
        })
        .then(
          (exit) => send({ exit }),
          (err: unknown) => {
            send({ e: `gridpatrol: ${err instanceof Error ? err.message : String(err)}\n` })
            send({ exit: 1 })
          },
        )
        .finally(() => sock.end())
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => {
      server.off('error', reject)
      resolve()
    })
  })
  await chmod(path, 0o600)
  return {
    path,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        // a command still running finishes on the store; its caller is cut off (the store closes next)
        for (const s of active) s.destroy()
      })
      await unlink(path).catch(() => undefined)
    },
  }
}

function parseRequest(line: string): Request {
  const r = JSON.parse(line) as Partial<Request>
  if (!Array.isArray(r.argv) || !r.argv.every((a) => typeof a === 'string')) throw new Error('argv must be an array of strings')
  if (typeof r.env !== 'object' || r.env === null) throw new Error('env must be an object')
  if (typeof r.cwd !== 'string') throw new Error('cwd must be a string')
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(r.env)) if (typeof v === 'string') env[k] = v
  return { argv: r.argv, env, cwd: r.cwd, tty: r.tty === true }
}

/**
 * Runs a command line (argv after node and the script) on the server holding the data
 * directory: its output to this command's streams, its exit status returned. When nothing
 * answers on the socket (the holder is not a server, or stopped meanwhile), `held` is thrown.
 */
export async function forwardCommand(path: string, args: readonly string[], held: Error): Promise<number> {
  const cli = io()
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(cli.env)) if (v !== undefined) env[k] = v
  const request: Request = { argv: [...args], env, cwd: cli.cwd ?? process.cwd(), tty: cli.stdout.isTTY === true }
  return new Promise<number>((resolve, reject) => {
    let connected = false
    let exit: number | undefined
    let buf = ''
    const sock = net.createConnection(path, () => {
      connected = true
      sock.write(JSON.stringify(request) + '\n')
    })
    sock.setEncoding('utf8')
    sock.on('data', (chunk: string) => {
      buf += chunk
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const m = JSON.parse(buf.slice(0, nl)) as { o?: string; e?: string; exit?: number }
        buf = buf.slice(nl + 1)
        if (typeof m.o === 'string') cli.stdout.write(m.o)
        if (typeof m.e === 'string') cli.stderr.write(m.e)
        if (typeof m.exit === 'number') exit = m.exit
      }
    })
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) reject(held)
      else reject(new Error(`the running server closed the command's connection (${err.code ?? err.message})`))
    })
    sock.on('close', () => {
      if (exit !== undefined) resolve(exit)
      else if (connected) reject(new Error('the running server stopped before the command finished; run it again'))
    })
  })
}
