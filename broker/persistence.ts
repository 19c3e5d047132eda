// Session state and routing: in memory by default, Redis when REDIS_URL is set
// (aedes-persistence-redis for sessions/retained, mqemitter-redis for routing), so
// several broker nodes behind a TCP load balancer share one view.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export interface Backends {
  mode: 'memory' | 'redis'
  /** undefined = aedes' in-memory defaults. */
  persistence?: unknown
  mq?: unknown
  close(): Promise<void>
}

/** ioredis options from a redis:// or rediss:// URL. */
export function redisOptions(url: string): Record<string, unknown> {
  const u = new URL(url)
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    db: Number.isInteger(db) ? db : 0,
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // fail fast at start instead of queueing commands forever
    maxRetriesPerRequest: 20,
  }
}

export function createBackends(redisUrl: string | undefined, concurrency: number): Backends {
  if (!redisUrl) return { mode: 'memory', close: async () => {} }
  // CommonJS packages without ESM types: loaded through require, typed at the edge.
  const persistenceFactory = require('aedes-persistence-redis') as (opts: Record<string, unknown>) => { destroy(): Promise<void> }
  const mqFactory = require('mqemitter-redis') as (opts: Record<string, unknown>) => { close(cb: () => void): void }
  const opts = redisOptions(redisUrl)
  const persistence = persistenceFactory({ ...opts })
  const mq = mqFactory({ ...opts, concurrency })
  return {
    mode: 'redis',
    persistence,
    mq,
    // aedes closes the mq itself; the persistence is ours to destroy.
    close: async () => {
      await persistence.destroy().catch(() => undefined)
    },
  }
}
