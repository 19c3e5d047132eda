import { z } from 'zod'

/** A TCP port; 0 means "pick an ephemeral port" (tests use it). */
const port = (def: number, what: string) =>
  z.coerce.number().int().min(0).max(65535).default(def).describe(`${what} (0 = ephemeral)`)

const flag = (what: string) =>
  z
    .enum(['0', '1', 'true', 'false', 'yes', 'no', 'on', 'off', ''])
    .default('0')
    .transform((v) => ['1', 'true', 'yes', 'on'].includes(v))
    .describe(what)

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
  GRIDPATROL_LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('Log level of the process logger (pino)'),
  GRIDPATROL_MQTT_ALLOW_ANONYMOUS: flag('Lab mode: anonymous MQTT clients allowed outside the device namespace'),
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
  }
  readonly http: { readonly port: number }
  readonly dataDir: string
  readonly databaseUrl: string | undefined
  readonly redisUrl: string | undefined
  readonly logLevel: Env['GRIDPATROL_LOG_LEVEL']
}
