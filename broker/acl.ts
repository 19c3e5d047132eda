// Topic ACL, deny by default. Pure: no I/O, no clock.
import { TOPIC_ROOT, commandTopic, parseTopic, type UplinkKind } from '../firmware-protocol/index.ts'
import type { Principal } from './types.ts'

export type PublishDecision =
  | { allow: true; uplink?: { deviceId: string; kind: UplinkKind }; presence?: string }
  | { allow: false; reason: string }

export type SubscribeDecision = { allow: true } | { allow: false; reason: string }

const deny = (reason: string) => ({ allow: false as const, reason })

/**
 * MQTT topic-filter matching, with [MQTT-4.7.2-1]: wildcards at the first level never
 * match `$` topics. Walks both strings level by level without allocating (it runs for
 * every delivery to a service account).
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.charCodeAt(0) === 36 /* $ */ && (filter.charCodeAt(0) === 43 /* + */ || filter.charCodeAt(0) === 35) /* # */) return false
  let f = 0
  let t = 0
  for (;;) {
    const fEnd = nextSlash(filter, f)
    const fLen = fEnd - f
    if (fLen === 1 && filter.charCodeAt(f) === 35) return true // '#' [MQTT-4.7.1-2] also matches the parent level
    if (t > topic.length) return false // the topic has fewer levels
    const tEnd = nextSlash(topic, t)
    const plus = fLen === 1 && filter.charCodeAt(f) === 43 // '+'
    if (!plus && (fLen !== tEnd - t || !sameLevel(filter, f, topic, t, fLen))) return false
    if (fEnd === filter.length) return tEnd === topic.length
    f = fEnd + 1
    t = tEnd + 1
  }
}

const nextSlash = (s: string, from: number) => {
  const i = s.indexOf('/', from)
  return i < 0 ? s.length : i
}

const sameLevel = (a: string, ai: number, b: string, bi: number, len: number) => {
  for (let k = 0; k < len; k++) if (a.charCodeAt(ai + k) !== b.charCodeAt(bi + k)) return false
  return true
}

/** True when every topic `filter` can match is also matched by `pattern`. */
export function filterCovers(pattern: string, filter: string): boolean {
  const p = pattern.split('/')
  const f = filter.split('/')
  for (let i = 0; i < p.length; i++) {
    const ps = p[i]
    if (ps === '#') return !(filter.startsWith('$') && i === 0 && !pattern.startsWith('$'))
    const fs = f[i]
    if (fs === undefined) return false
    if (fs === '#') return false
    if (ps === '+') {
      if (i === 0 && fs.startsWith('$')) return false
      continue
    }
    if (fs === '+' || fs !== ps) return false
  }
  return p.length === f.length
}

const hasWildcard = (s: string) => s.includes('+') || s.includes('#')
const inDeviceNamespace = (s: string) => s.split('/', 1)[0] === TOPIC_ROOT

/**
 * Devices publish to the same few topics all day: the parse of an allowed device topic
 * is kept (topic → decision, shared and read-only; at most 50,000 topics, then
 * started afresh) instead of splitting and validating the topic on every publish.
 * Ownership is still checked against the principal on every call.
 */
const deviceTopics = new Map<string, Readonly<PublishDecision & { allow: true }>>()
function remember(topic: string, decision: PublishDecision & { allow: true }): PublishDecision {
  if (deviceTopics.size >= 50_000) deviceTopics.clear()
  deviceTopics.set(topic, decision)
  return decision
}

/** May `principal` publish to `topic`? Devices: only their own uplink and presence topics. */
export function authorizePublishTopic(principal: Principal, topic: string): PublishDecision {
  if (topic.length === 0) return deny('empty topic')
  if (hasWildcard(topic)) return deny('wildcards are not allowed in a published topic') // [MQTT-3.3.2-2]
  if (topic.startsWith('$')) return deny('$-topics are reserved')
  switch (principal.kind) {
    case 'device': {
      const known = deviceTopics.get(topic)
      if (known) return (known.uplink?.deviceId ?? known.presence) === principal.deviceId ? known : deny('topic names another device')
      const parsed = parseTopic(topic)
      if (!parsed.ok) return deny(parsed.reason)
      if (parsed.deviceId !== principal.deviceId) return deny('topic names another device')
      if (parsed.direction === 'up') return remember(topic, { allow: true, uplink: { deviceId: parsed.deviceId, kind: parsed.kind } })
      if (parsed.direction === 'presence') return remember(topic, { allow: true, presence: parsed.deviceId })
      return deny('devices may not publish to downlink topics')
    }
    case 'service':
      return principal.rights.publish.some((p) => topicMatches(p, topic)) ? { allow: true } : deny('outside the service account rights')
    case 'anonymous':
      return inDeviceNamespace(topic) ? deny('device namespace is closed to anonymous clients') : { allow: true }
  }
}

/** May `principal` subscribe to `filter`? Devices: only their own command topic. */
export function authorizeSubscribeFilter(principal: Principal, filter: string): SubscribeDecision {
  if (filter.length === 0) return deny('empty topic filter')
  // aedes 1.x accepts $share subscriptions and then delivers nothing: refuse them clearly.
  if (filter.startsWith('$share/')) return deny('shared subscriptions ($share) are not supported')
  switch (principal.kind) {
    case 'device':
      return filter === commandTopic(principal.deviceId) ? { allow: true } : deny('devices may subscribe only to their own command topic')
    case 'service':
      return principal.rights.subscribe.some((p) => filterCovers(p, filter)) ? { allow: true } : deny('outside the service account rights')
    case 'anonymous':
      if (filter.startsWith('$')) return deny('$-topics are closed to anonymous clients')
      // A wildcard at the first level may be granted; forwarding still filters the
      // device namespace out (see mayForward).
      return inDeviceNamespace(filter) ? deny('device namespace is closed to anonymous clients') : { allow: true }
  }
}

/**
 * Delivery-time check, the last line of defence: aedes persists every filter of a
 * SUBSCRIBE packet for a persistent session, refused ones included, and replays them
 * at reconnect; forwarding re-applies the ACL so nothing leaks through that path.
 */
export function mayForward(principal: Principal, topic: string): boolean {
  switch (principal.kind) {
    case 'device':
      return topic === commandTopic(principal.deviceId)
    case 'service':
      return principal.rights.subscribe.some((p) => topicMatches(p, topic))
    case 'anonymous':
      return !inDeviceNamespace(topic)
  }
}
