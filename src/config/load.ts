import { envSchema, type Config, type Env } from './schema.ts'
import { ConfigError } from './errors.ts'

/**
 * Turns an environment into a frozen Config. Fails with one error listing every
 * bad variable (immich's getEnv), never just the first.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const relevant: Record<string, string> = {}
  for (const key of Object.keys(envSchema.shape)) {
    const v = env[key]
    if (v !== undefined && v !== '') relevant[key] = v
  }
  const parsed = envSchema.safeParse(relevant)
  const problems: string[] = []
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? '(environment)')
      problems.push(`${name}=${JSON.stringify(relevant[name] ?? '')}: ${issue.message}`)
    }
  }
  const e = parsed.success ? parsed.data : undefined
  if (e && (e.GRIDPATROL_TLS_CERT === undefined) !== (e.GRIDPATROL_TLS_KEY === undefined)) {
    problems.push('GRIDPATROL_TLS_CERT and GRIDPATROL_TLS_KEY must be set together')
  }
  if (problems.length > 0 || !e) throw new ConfigError(problems)
  return fromEnv(e)
}

function fromEnv(e: Env): Config {
  const tls =
    e.GRIDPATROL_TLS_CERT && e.GRIDPATROL_TLS_KEY
      ? { cert: e.GRIDPATROL_TLS_CERT, key: e.GRIDPATROL_TLS_KEY, ...(e.GRIDPATROL_TLS_CA ? { ca: e.GRIDPATROL_TLS_CA } : {}) }
      : undefined
  return deepFreeze({
    host: e.GRIDPATROL_HOST,
    mqtt: {
      port: e.GRIDPATROL_MQTT_PORT,
      tlsPort: e.GRIDPATROL_MQTTS_PORT,
      wsPort: e.GRIDPATROL_WS_PORT,
      tls,
      allowAnonymous: e.GRIDPATROL_MQTT_ALLOW_ANONYMOUS,
      noDelay: e.GRIDPATROL_MQTT_NODELAY,
      limits: {
        maxPacketBytes: e.GRIDPATROL_MQTT_MAX_PACKET_BYTES,
        publishRate: e.GRIDPATROL_MQTT_PUBLISH_RATE,
        publishBurst: e.GRIDPATROL_MQTT_PUBLISH_BURST,
        maxQueued: e.GRIDPATROL_MQTT_MAX_QUEUED,
        keepaliveMax: e.GRIDPATROL_MQTT_KEEPALIVE_MAX,
        flapLimit: e.GRIDPATROL_MQTT_FLAP_LIMIT,
      },
    },
    http: { port: e.GRIDPATROL_HTTP_PORT },
    serial: e.GRIDPATROL_SERIAL_PORTS,
    dataDir: e.GRIDPATROL_DATA_DIR,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    logLevel: e.GRIDPATROL_LOG_LEVEL,
    storage: { retentionDays: e.GRIDPATROL_RETENTION_DAYS, compressAfterDays: e.GRIDPATROL_COMPRESS_AFTER_DAYS },
    revokeCheckMs: e.GRIDPATROL_REVOKE_CHECK_MS,
    keepProvisionalReports: e.GRIDPATROL_KEEP_PROVISIONAL_REPORTS,
    timeSyncEveryMs: Math.round(e.GRIDPATROL_TIME_SYNC_HOURS * 3_600_000),
    shutdownGraceMs: Math.max(1, Math.round(e.GRIDPATROL_SHUTDOWN_GRACE_SECONDS * 1_000)),
  })
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v)
    Object.freeze(o)
  }
  return o
}

/** The documented table of variables: name, default, description. */
export function describeEnv(): Array<{ name: string; default: string; description: string }> {
  return Object.entries(envSchema.shape).map(([name, schema]) => {
    const parsed = schema.safeParse(undefined)
    const def = parsed.success && parsed.data !== undefined ? String(parsed.data) : ''
    return { name, default: def, description: schema.description ?? '' }
  })
}
