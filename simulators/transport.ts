// The seam between a simulated device and the network (MQTT.js-style: one
// transport per small file). A device produces envelopes into a Transport; the
// memory transport runs on the virtual clock with no broker, the MQTT transport
// talks to a real broker with mqtt.js.

export interface TransportHandlers {
  /** Connected (CONNACK accepted, command topic subscribed). */
  onOnline(): void
  onOffline(reason: string): void
  /** A downlink payload arrived on the device's command topic. */
  onCommand(payload: Uint8Array): void
}

export interface PublishOptions {
  qos: 0 | 1
  retain?: boolean
}

export interface Transport {
  readonly online: boolean
  /** Begins connecting; reconnects by itself while the network is reachable. */
  start(handlers: TransportHandlers): void
  /**
   * Network coverage: `false` drops the connection without a DISCONNECT (the
   * broker publishes the last will) and stops reconnecting; `true` reconnects.
   */
  setReachable(reachable: boolean): void
  /**
   * `done()` runs when the PUBACK arrived (QoS 1) or the packet was written (QoS 0);
   * `done(err)` when the connection was lost first — the message may or may not
   * have reached the server, so the device re-sends it (the server dedups by seq).
   */
  publish(topic: string, payload: Uint8Array, opts: PublishOptions, done: (err?: Error) => void): void
  /** Disconnects cleanly (no last will) and releases resources. */
  close(): Promise<void>
}

/** How a device connects; quirks exist for the deliberately broken variants. */
export interface ConnectOptions {
  deviceId: string
  secret: string
  /** Default: the device id (PROTOCOL.md: clientId = username = device id). */
  clientId?: string
  /** Default true: last will "offline", retained, QoS 1, on the presence topic. */
  will?: boolean
  /** Default false for devices (persistent session: queued commands survive). */
  clean?: boolean
}

export class ConnectionLost extends Error {
  override readonly name = 'ConnectionLost'
  constructor(reason = 'connection lost before PUBACK') {
    super(reason)
  }
}
