// The HTTP app (fastify): builds, never listens (src/main.ts does). For now the
// operator's endpoints — health and Prometheus metrics; the supervisors' API
// (grids, plans, reports, cases) is built on this app.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import type { Store } from '../store/types.ts'

export interface AppDeps {
  store: Pick<Store, 'ping' | 'capabilities'>
  registry: Registry
  log: Logger
  /** Extra facts for /health (broker mode, ports, ...). */
  info?: () => Record<string, unknown>
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: deps.log.child({ component: 'api' }) as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) })

  app.get('/health', async (_req, reply) => {
    const started = performance.now()
    try {
      await deps.store.ping()
    } catch (err) {
      return reply.code(503).send({ status: 'unavailable', database: 'unreachable', error: err instanceof Error ? err.message : String(err) })
    }
    return {
      status: 'ok',
      database: { driver: deps.store.capabilities.driver, timescale: deps.store.capabilities.timescale, pingMs: +(performance.now() - started).toFixed(2) },
      ...deps.info?.(),
    }
  })

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.registry.contentType)
    return deps.registry.metrics()
  })

  return app
}
