import { z } from 'zod'

/** A TCP port; 0 means "pick an ephemeral port" (tests use it). */
const port = (def: number, what: string) =>
  z.coerce.number().int().min(0).max(65535).default(def).describe(`${what} (0 = ephemeral)`)

const flag = (what: string, def: '0' | '1' = '0') =>
  z
    .enum(['0', '1', 'true', 'false', 'yes', 'no', 'on', 'off', ''])
    .default(def)
    .transform((v) => ['1', 'true', 'yes', 'on'].includes(v))
    .describe(what)

const count = (def: number, what: string, min: number) => z.coerce.number().int().min(min).default(def).describe(what)

/**
 * Every environment variable gridpatrol reads, declared once with its default and
 * meaning (traccar's Keys.java idea). `gridpatrol config` prints this table.
 */
export const envSchema = z.object({
  GRIDPATROL_MQTT_PORT: port(1883, 'MQTT over TCP listener port'),
  GRIDPATROL_MQTTS_PORT: port(8883, 'MQTT over TLS listener port; needs GRIDPATROL_TLS_CERT and GRIDPATROL_TLS_KEY'),
  GRIDPATROL_WS_PORT: port(8083, 'MQTT over WebSocket listener port'),
  GRIDPATROL_HTTP_PORT: port(8080, 'HTTP API port'),
  GRIDPATROL_HOST: z.string().min(1).default('0.0.0.0').describe('Address every listener binds to'),
  GRIDPATROL_TLS_CERT: z.string().optional().describe('PEM certificate file for the TLS listener'),
  GRIDPATROL_TLS_KEY: z.string().optional().describe('PEM private key file for the TLS listener'),
  GRIDPATROL_TLS_CA: z.string().optional().describe('PEM CA file; when set, device client certificates are verified (CN = device id)'),
  GRIDPATROL_DATA_DIR: z.string().min(1).default('./data').describe('Directory of the embedded database and other local state'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://')
    .optional()
    .describe('Server database (TimescaleDB or plain PostgreSQL); unset = embedded PGlite in GRIDPATROL_DATA_DIR'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .optional()
    .describe('Redis for cluster mode (shared sessions and routing); unset = in memory'),
  GRIDPATROL_RETENTION_DAYS: z.coerce
    .number()
    .int()
    .min(0)
    .default(0)
    .describe("Days of time-series data (check-ins, telemetry, status, alarms, presence) kept by TimescaleDB retention; also of the ingest's dedup keys and of clock estimates (each device's latest is kept); 0 = keep forever"),
  GRIDPATROL_COMPRESS_AFTER_DAYS: z.coerce
    .number()
    .int()
    .min(0)
    .default(7)
    .describe('TimescaleDB compresses time-series chunks older than this many days; 0 = no compression'),
  GRIDPATROL_LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('Log level of the process logger (pino)'),
  GRIDPATROL_MQTT_ALLOW_ANONYMOUS: flag('Lab mode: anonymous MQTT clients allowed outside the device namespace'),
  GRIDPATROL_MQTT_NODELAY: flag('TCP_NODELAY on MQTT connections: lower ack latency at some peak-throughput cost', '1'),
  GRIDPATROL_MQTT_MAX_PACKET_BYTES: count(262144, 'Largest MQTT packet accepted, bytes; larger ones close the connection', 64),
  GRIDPATROL_MQTT_PUBLISH_RATE: count(20, 'Per-device publish rate, messages/s (token bucket); faster publishers are slowed before their ack', 1),
  GRIDPATROL_MQTT_PUBLISH_BURST: count(200, 'Per-device publish burst, messages (token bucket size; covers store-and-forward uploads)', 1),
  GRIDPATROL_MQTT_MAX_QUEUED: count(1000, 'Per-subscriber bound of unflushed deliveries: QoS 0 beyond it is dropped, QoS 1 beyond it disconnects the subscriber', 1),
  GRIDPATROL_MQTT_KEEPALIVE_MAX: count(1200, 'Largest keep-alive a client may request, seconds (0 = none is refused)', 1),
  GRIDPATROL_MQTT_FLAP_LIMIT: count(10, 'Connects per client id per minute before reconnects are slowed down', 1),
  GRIDPATROL_SERIAL_PORTS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const out: Array<{ path: string; baudRate: number }> = []
      for (const item of v.split(',').map((x) => x.trim()).filter(Boolean)) {
        const at = item.lastIndexOf('@')
        const path = at < 0 ? item : item.slice(0, at)
        const baudRate = at < 0 ? 115_200 : Number(item.slice(at + 1))
        if (!path || !Number.isInteger(baudRate) || baudRate < 50 || baudRate > 4_000_000) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${item}" is not PATH or PATH@BAUD (e.g. /dev/ttyUSB0@115200)` })
          return z.NEVER
        }
        out.push({ path, baudRate })
      }
      return out
    })
    .describe('Serial gateways run by `start`: comma-separated PATH[@BAUD] (default 115200) of docking cradles / RS-485 lines speaking PROTOCOL.md §7; empty = none'),
  GRIDPATROL_REVOKE_CHECK_MS: count(10000, 'How often connected devices are checked against the device table: one disabled, removed or whose secret was rotated after it connected is disconnected within this time, ms', 100),
  GRIDPATROL_TIME_SYNC_HOURS: z.coerce
    .number()
    .positive()
    .default(6)
    .describe('A device gets a time sync when it connects with a clock estimate older than this, and again this often while it stays online, hours'),
  GRIDPATROL_SHUTDOWN_GRACE_SECONDS: z.coerce
    .number()
    .positive()
    .default(5)
    .describe(
      'What a stop (SIGTERM, Ctrl-C) gives the work in flight, seconds (fractions allowed): the commits of the broker, serial lines and external ingest, the ingest batcher, the server database\'s queries; keep it well below the supervisor\'s stop timeout',
    ),
  GRIDPATROL_KEEP_PROVISIONAL_REPORTS: flag(
    "Keep every provisional coverage report revision (pending cells: stored at each window end while the day is open, about one per window); off: a new revision replaces the grid-day's provisional ones, and every revision stored once the day was complete is kept",
  ),
})

export type Env = z.output<typeof envSchema>

/** The typed, frozen configuration the rest of the program receives. */
export interface Config {
  readonly host: string
  readonly mqtt: {
    readonly port: number
    readonly tlsPort: number
    readonly wsPort: number
    readonly tls: { readonly cert: string; readonly key: string; readonly ca?: string } | undefined
    readonly allowAnonymous: boolean
    readonly noDelay: boolean
    readonly limits: {
      readonly maxPacketBytes: number
      readonly publishRate: number
      readonly publishBurst: number
      readonly maxQueued: number
      readonly keepaliveMax: number
      readonly flapLimit: number
    }
  }
  readonly http: { readonly port: number }
  /** Serial lines (PROTOCOL.md §7) whose frames `start` ingests. */
  readonly serial: ReadonlyArray<{ readonly path: string; readonly baudRate: number }>
  readonly dataDir: string
  readonly databaseUrl: string | undefined
  readonly redisUrl: string | undefined
  readonly logLevel: Env['GRIDPATROL_LOG_LEVEL']
  /** Time-series retention and compression (TimescaleDB only; 0 = off). */
  readonly storage: { readonly retentionDays: number; readonly compressAfterDays: number }
  /** Connected devices re-checked against the device table this often (ms): disabled / rotated ones are disconnected. */
  readonly revokeCheckMs: number
  /** A device's clock is re-synced this often (ms): at a connect with an older estimate, and while online. */
  readonly timeSyncEveryMs: number
  /** What a stop gives the work in flight (ms): the fronts', the ingest's and the store's close grace, and the shutdown watchdog's. */
  readonly shutdownGraceMs: number
  /** Coverage reports: keep every provisional revision instead of only the latest (rules runner keepProvisionalRevisions). */
  readonly keepProvisionalReports: boolean
}
