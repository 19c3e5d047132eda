// Compact retained presence (in-memory mode only). Every device leaves one retained
// message on its presence topic ("online"/"offline", PROTOCOL.md §2); aedes' memory
// store keeps each as a copied packet object keyed by its topic string (~250 B per
// device, heap snapshot of 2,000 idle devices). Here those two payloads are kept as
// one small integer per device id instead, and turned back into packets only when a
// SUBSCRIBE asks for retained messages. Any other retained message (another payload
// on a presence topic included) goes to aedes' store unchanged.
import { Readable } from 'node:stream'
import { PRESENCE_OFFLINE, PRESENCE_ONLINE, parseTopic, presenceTopic } from '../firmware-protocol/index.ts'
import { topicMatches } from './acl.ts'

const ONLINE = Buffer.from(PRESENCE_ONLINE)
const OFFLINE = Buffer.from(PRESENCE_OFFLINE)

type Retained = { cmd?: string; topic: string; payload: Buffer | string; qos?: number }
type Cb = (err?: Error | null) => void
interface RetainedStore {
  storeRetained(packet: Retained, cb?: Cb): unknown
  createRetainedStream(pattern: string): Readable
  createRetainedStreamCombi(patterns: string[]): Readable
}

/** QoS and state of one device's retained presence, packed: bit 0 online, bits 1-2 QoS. */
const pack = (online: boolean, qos: number) => (online ? 1 : 0) | ((qos & 3) << 1)

export function compactRetainedPresence(persistence: unknown): { size(): number } {
  const store = persistence as RetainedStore
  const states = new Map<string, number>()
  const storeRetained = store.storeRetained.bind(store)
  const byPattern = store.createRetainedStream.bind(store)
  const byPatterns = store.createRetainedStreamCombi.bind(store)

  store.storeRetained = (packet: Retained, cb?: Cb) => {
    const parsed = parseTopic(packet.topic)
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
    const compact = parsed.ok && parsed.direction === 'presence' && (payload.equals(ONLINE) || payload.equals(OFFLINE))
    if (compact) {
      states.set(parsed.deviceId, pack(payload.equals(ONLINE), packet.qos ?? 0))
      // Drop any other payload retained earlier on that topic (a custom will).
      return storeRetained({ ...packet, payload: Buffer.alloc(0) }, cb)
    }
    if (parsed.ok && parsed.direction === 'presence') states.delete(parsed.deviceId)
    return storeRetained(packet, cb)
  }

  const withPresence = (inner: Readable, patterns: string[]) =>
    Readable.from(
      (async function* () {
        for await (const p of inner) yield p
        for (const [deviceId, state] of states) {
          const topic = presenceTopic(deviceId)
          if (patterns.some((p) => topicMatches(p, topic))) {
            yield { cmd: 'publish', topic, payload: state & 1 ? ONLINE : OFFLINE, qos: (state >> 1) & 3, retain: true, dup: false }
          }
        }
      })(),
      { objectMode: true },
    )
  store.createRetainedStream = (pattern: string) => withPresence(byPattern(pattern), [pattern])
  store.createRetainedStreamCombi = (patterns: string[]) => withPresence(byPatterns(patterns), patterns)
  return { size: () => states.size }
}
