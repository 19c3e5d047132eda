// Our own message types (camelCase, plain numbers, hex strings for bytes). The
// generated protobufjs classes never leave codec.ts (STYLE: quarantine).
import type { UplinkKind } from './topics.ts'

export type ReadMethod = 'nfc' | 'rfid' | 'ibutton' | 'qr' | 'gps'
export type AlarmKind = 'sos' | 'tamper' | 'man_down' | 'low_battery'
export type AckStatus = 'ok' | 'rejected' | 'unsupported' | 'expired'

export interface GeoFix {
  lat: number
  lon: number
  /** Horizontal accuracy radius in metres; absent = unknown. */
  accuracyM?: number
  altitudeM?: number
  /** Device time of the fix, Unix ms; absent = the envelope's device time. */
  fixTimeMs?: number
}

export interface CheckIn {
  /** Checkpoint tag id; empty only for method 'gps'. */
  tagId: string
  method: ReadMethod
  fix?: GeoFix
  badgeId?: string
  batteryPct?: number
}

export interface Reading {
  metric: string
  value: number
  unit?: string
  /** Device time of the reading, Unix ms; absent = the envelope's device time. */
  timeMs?: number
}

export interface Telemetry {
  readings: Reading[]
}

export interface Status {
  batteryPct?: number
  signalDbm?: number
  firmwareVersion?: string
  uptimeS?: number
  bufferedCount?: number
  bootCount?: number
  batteryMv?: number
  fix?: GeoFix
}

export interface Alarm {
  kind: AlarmKind
  fix?: GeoFix
  badgeId?: string
  detail?: string
}

export interface CommandAck {
  commandId: string
  status: AckStatus
  detail?: string
  /** Device clock when the command arrived (t1 of a time sync). */
  receivedDeviceTimeMs?: number
  /** A ping's nonce echoed, lower-case hex. */
  nonceHex?: string
}

export interface Batch {
  items: Uplink[]
}

interface Envelope {
  /** The device's sequence number (1 … 2^53-1); 0 for a batch envelope. */
  seq: number
  /** The device's clock when the envelope was created, Unix ms UTC. */
  deviceTimeMs: number
  /** Optional; must equal the device id in the topic when present. */
  deviceId?: string
}

export type UplinkBody =
  | { kind: 'checkin'; checkin: CheckIn }
  | { kind: 'telemetry'; telemetry: Telemetry }
  | { kind: 'status'; status: Status }
  | { kind: 'alarm'; alarm: Alarm }
  | { kind: 'batch'; batch: Batch }
  | { kind: 'ack'; ack: CommandAck }

/** One uplink envelope; `kind` is also the last segment of its topic. */
export type Uplink = Envelope & UplinkBody

export type UplinkOf<K extends UplinkKind> = Extract<Uplink, { kind: K }>

export interface TimeSync {
  /** Server clock when sent (t0), Unix ms. */
  serverTimeMs: number
}

export interface ConfigUpdate {
  reportIntervalS?: number
  heartbeatIntervalS?: number
  lowBatteryPct?: number
  extra?: Record<string, string>
}

export interface Ping {
  nonceHex: string
}

export type CommandBody =
  | { kind: 'time_sync'; timeSync: TimeSync }
  | { kind: 'config'; config: ConfigUpdate }
  | { kind: 'ping'; ping: Ping }

export type CommandKind = CommandBody['kind']

/** One downlink command (topic gp/v1/{device}/down/cmd). */
export type Command = {
  commandId: string
  issuedMs: number
  /** 0 = never expires. */
  expiresMs: number
} & CommandBody
