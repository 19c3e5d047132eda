// The interfaces the broker needs from the rest of the system. src/main.ts wires
// them to the store and the ingest; the broker never imports either.
import type { UplinkKind } from '../firmware-protocol/index.ts'

/**
 * Who a connection is, once authenticated. `credential`: an opaque stamp of the
 * credential the connection authenticated with, set by the directory (the broker
 * only keeps it; a revocation check compares it with the stored credential's
 * stamp, so a rotation is seen without comparing clocks). Never logged.
 */
export type Principal =
  | { kind: 'device'; deviceId: string; credential?: number }
  | { kind: 'service'; name: string; rights: ServiceRights; credential?: number }
  /** Lab mode only (GRIDPATROL_MQTT_ALLOW_ANONYMOUS): rights outside the device namespace. */
  | { kind: 'anonymous' }

/** MQTT topic filters (`+`/`#` allowed) a service account may publish or subscribe to. */
export interface ServiceRights {
  publish: string[]
  subscribe: string[]
}

export interface Credentials {
  clientId: string
  /** Device id for devices, account name for services. */
  username: string | undefined
  /** The secret; never logged. */
  password: Buffer | undefined
  /** CN of a verified TLS client certificate (= device id), when one was presented. */
  certCN?: string
}

/** A refusal the directory wants reported as "not authorized" (CONNACK 5), e.g. a disabled device. */
export interface Refusal {
  refused: string
}

/**
 * Authentication source. `null` means unknown account or wrong secret (CONNACK 4);
 * `{ refused }` means known but not allowed (CONNACK 5); a throw means the
 * directory is unavailable (CONNACK 3).
 */
export interface DeviceDirectory {
  authenticate(creds: Credentials): Promise<Principal | Refusal | null>
  /**
   * Lab mode: is `id` a device id or a service account name? Anonymous clients may not
   * use such a client id (nor `<service>:<suffix>`), so they cannot take over a
   * device's or a service's session. Without it, only ids held by a connected device
   * or service are refused.
   */
  isReserved?(id: string): Promise<boolean>
}

/** One accepted uplink publish, handed to the sink before the device gets its PUBACK. */
export interface UplinkMessage {
  deviceId: string
  kind: UplinkKind
  topic: string
  payload: Buffer
  qos: 0 | 1 | 2
  /** Receipt time: ms since the epoch (the broker's, no Date per message) or a Date. */
  receivedAt: Date | number
  clientId: string
}

/**
 * Where device uplinks go. `commit` resolves once the message (or its reject row)
 * is durable; only then is the PUBACK written (DESIGN: ack after commit). It must
 * resolve for payloads it cannot decode (stored as rejects) and throw only when it
 * cannot store anything (database down): the broker then retries and never acks.
 */
export interface UplinkSink {
  commit(msg: UplinkMessage): Promise<void>
  /**
   * Optional, the same contract with a callback (no promise per message): `done(null)`
   * once durable, `done(err)` when nothing could be stored; called once, never
   * synchronously. Used instead of commit() when present.
   */
  commitCallback?(msg: UplinkMessage, done: (err: Error | null) => void): void
}

export type PresenceReason =
  | 'connect'
  | 'disconnect' // clean DISCONNECT packet
  | 'keepalive_timeout'
  | 'will' // connection lost, the device's last will was published
  | 'connection_lost' // connection lost, no will
  | 'takeover' // the same client id connected again
  | 'slow_consumer'
  | 'broker_shutdown'
  | 'revoked' // disconnected by the broker: the device was disabled or its secret rotated while connected

/** A connection on this broker node that has authenticated. */
export interface Session {
  clientId: string
  principal: Principal
}

/** Online/offline of one device on this broker node. */
/** The device's command-topic subscription is in place: commands published now reach it. */
export interface DownlinkReadyEvent {
  deviceId: string
  clientId: string
}

export interface PresenceEvent {
  deviceId: string
  clientId: string
  online: boolean
  reason: PresenceReason
  at: Date
}
