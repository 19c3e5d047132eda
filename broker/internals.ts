// The few aedes 1.2.0 internals the broker relies on, typed in one place.
// Re-check each of them whenever aedes is bumped (see lib/client.js, aedes.js).
import type { Aedes, Client, PublishPacket } from 'aedes'

type Deliver = (packet: PublishPacket & { qos: 0 | 1 | 2 }, cb: () => void) => void

export interface ClientInternals {
  /** mqemitter listeners registered at SUBSCRIBE time; wrapped at connection time. */
  deliver0: Deliver
  deliverQoS: Deliver
  /** mqtt-packet parser of this connection. */
  _parser: {
    _parseLength(): boolean
    packet: { length: number; cmd?: string }
    _emitError(err: Error): void
    /** The CONNECT packet once parsed (mqtt-packet reads protocolVersion/bridgeMode from it later). */
    settings: { cmd?: string; protocolVersion?: number; bridgeMode?: boolean; password?: Buffer }
  }
  /** Set when a DISCONNECT packet was received (clean disconnect). */
  _disconnected: boolean
  will: PublishPacket | null
}

export interface AedesInternals {
  clients: Record<string, Client | undefined>
  mq: { length?: number }
}

export const internalsOf = (c: Client) => c as unknown as Client & ClientInternals
export const aedesInternals = (a: Aedes) => a as unknown as Aedes & AedesInternals
