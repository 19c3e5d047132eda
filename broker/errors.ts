// Coded broker errors (fastify's FST_ERR_* style, GP_BROKER_* here).

export type BrokerErrorCode =
  | 'GP_BROKER_PORT_IN_USE'
  | 'GP_BROKER_LISTEN'
  | 'GP_BROKER_TLS_CONFIG'
  | 'GP_BROKER_BAD_OPTIONS'
  | 'GP_BROKER_PACKET_TOO_LARGE'
  | 'GP_BROKER_SLOW_CONSUMER'
  | 'GP_BROKER_REVOKED'
  | 'GP_BROKER_PROTOCOL'
  | 'GP_BROKER_CLOSED'
  | 'GP_BROKER_BAD_SECRET_HASH'

export class BrokerError extends Error {
  constructor(
    readonly code: BrokerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'BrokerError'
  }
}

/** MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2-3]. */
export const CONNACK = {
  identifierRejected: 2,
  serverUnavailable: 3,
  badCredentials: 4,
  notAuthorized: 5,
} as const

/** An error aedes turns into the given CONNACK return code. */
export function connackError(returnCode: number, message: string): Error & { returnCode: number } {
  return Object.assign(new Error(message), { returnCode })
}
