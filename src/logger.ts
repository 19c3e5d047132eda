import { pino, type Logger } from 'pino'

export type { Logger }

/**
 * The process logger. Secrets never reach it: credentials and payloads are kept
 * out of log fields by the callers, and these paths are redacted as a backstop.
 */
export function createLogger(level: string, name = 'gridpatrol'): Logger {
  return pino({
    name,
    level,
    redact: { paths: ['password', 'secret', '*.password', '*.secret', 'payload', '*.payload'], censor: '[redacted]' },
  })
}
