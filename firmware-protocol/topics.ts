// The MQTT topic scheme (PROTOCOL.md §2). The device id in the topic is the
// identity the broker authenticated; the version segment allows a v2 beside v1.

export const TOPIC_ROOT = 'gp'
export const PROTOCOL_VERSION = 'v1'

/** Uplink kinds, one topic each; the envelope body must match the topic's kind. */
export const UPLINK_KINDS = ['checkin', 'telemetry', 'status', 'alarm', 'batch', 'ack'] as const
export type UplinkKind = (typeof UPLINK_KINDS)[number]

/** Device ids: 1–64 of [A-Za-z0-9_-]; never MQTT wildcards, '/', '$' or spaces. */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID_PATTERN.test(id)
}

/** `gp/v1/{deviceId}/up/{kind}` — device → server, QoS 1. */
export function uplinkTopic(deviceId: string, kind: UplinkKind): string {
  return `${TOPIC_ROOT}/${PROTOCOL_VERSION}/${deviceId}/up/${kind}`
}

/** `gp/v1/{deviceId}/down/cmd` — server → device commands, QoS 1. */
export function commandTopic(deviceId: string): string {
  return `${TOPIC_ROOT}/${PROTOCOL_VERSION}/${deviceId}/down/cmd`
}

/** `gp/v1/{deviceId}/presence` — retained "online"/"offline"; the device's last will. */
export function presenceTopic(deviceId: string): string {
  return `${TOPIC_ROOT}/${PROTOCOL_VERSION}/${deviceId}/presence`
}

export const PRESENCE_ONLINE = 'online'
export const PRESENCE_OFFLINE = 'offline'

export type ParsedTopic =
  | { ok: true; deviceId: string; direction: 'up'; kind: UplinkKind; version: string }
  | { ok: true; deviceId: string; direction: 'down'; kind: 'cmd'; version: string }
  | { ok: true; deviceId: string; direction: 'presence'; version: string }
  | { ok: false; reason: string }

/** Parses a device topic; anything outside the scheme comes back with a reason. */
export function parseTopic(topic: string): ParsedTopic {
  const parts = topic.split('/')
  if (parts[0] !== TOPIC_ROOT) return { ok: false, reason: `topic must start with "${TOPIC_ROOT}/"` }
  const version = parts[1] ?? ''
  if (version !== PROTOCOL_VERSION) return { ok: false, reason: `unsupported protocol version "${version}" (expected ${PROTOCOL_VERSION})` }
  const deviceId = parts[2] ?? ''
  if (!isValidDeviceId(deviceId)) return { ok: false, reason: `invalid device id "${deviceId}" in topic` }
  const rest = parts.slice(3)
  if (rest.length === 1 && rest[0] === 'presence') return { ok: true, deviceId, direction: 'presence', version }
  if (rest.length === 2 && rest[0] === 'up') {
    const kind = rest[1] as UplinkKind
    if (!UPLINK_KINDS.includes(kind)) return { ok: false, reason: `unknown uplink kind "${rest[1]}"` }
    return { ok: true, deviceId, direction: 'up', kind, version }
  }
  if (rest.length === 2 && rest[0] === 'down' && rest[1] === 'cmd') return { ok: true, deviceId, direction: 'down', kind: 'cmd', version }
  return { ok: false, reason: `topic "${topic}" is not in the gridpatrol scheme` }
}
