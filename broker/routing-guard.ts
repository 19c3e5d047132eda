// Two guards on mqemitter, aedes 1.2.0's router (local emitter only; with Redis the
// local delivery side is the same class).
//
// 1. It recurses synchronously through its queue when a queued message has no
//    listener left — e.g. right after a subscriber with a large backlog disconnects —
//    and dies with "Maximum call stack size exceeded" (open upstream,
//    mcollina/mqemitter PR #204). A message that matches no listener gets one shared
//    listener that completes on the next turn of the event loop, so the queue always
//    drains asynchronously. Matched messages (nearly all) pay nothing for it.
// 2. Its backlog is two arrays consumed with `shift()`. Once they outgrow V8's
//    regular heap objects (~11k queued messages) every shift copies the whole array:
//    under a QoS 1 fan-in this took 18 % of the broker's CPU and cut throughput by
//    a third. Replaced by ring buffers (same push/shift/length surface).
type Listener = (msg: unknown, done: () => void) => void
interface LocalEmitter {
  _matcher?: { match(topic: string): Listener[] }
  _messageQueue?: unknown
  _messageCallbacks?: unknown
}

const deferDone: Listener = (_msg, done) => setImmediate(done)
const DEFERRED: readonly Listener[] = Object.freeze([deferDone])

/**
 * FIFO with amortised O(1) push and shift; grows by doubling, never shrinks below 64.
 * With `sizeOf`, it also keeps the sum of its items' sizes (`bytes`).
 */
export class RingQueue<T> {
  private items: Array<T | undefined> = new Array(64)
  private head = 0
  private size = 0
  private total = 0

  constructor(private readonly sizeOf?: (item: T) => number) {}

  get length(): number {
    return this.size
  }

  /** Sum of `sizeOf` over the queued items (0 without `sizeOf`). */
  get bytes(): number {
    return this.total
  }

  push(item: T): number {
    if (this.size === this.items.length) this.grow()
    this.items[(this.head + this.size) & (this.items.length - 1)] = item
    if (this.sizeOf) this.total += this.sizeOf(item)
    return ++this.size
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined
    const item = this.items[this.head] as T
    this.items[this.head] = undefined
    this.head = (this.head + 1) & (this.items.length - 1)
    this.size--
    if (this.sizeOf) this.total = this.size === 0 ? 0 : this.total - this.sizeOf(item)
    return item
  }

  private grow(): void {
    const next: Array<T | undefined> = new Array(this.items.length * 2)
    for (let i = 0; i < this.size; i++) next[i] = this.items[(this.head + i) & (this.items.length - 1)]
    this.items = next
    this.head = 0
  }
}

const toRing = (q: unknown, sizeOf?: (item: unknown) => number): RingQueue<unknown> => {
  const ring = new RingQueue<unknown>(sizeOf)
  if (Array.isArray(q)) for (const item of q) ring.push(item)
  return ring
}

/** Bytes a queued message holds on to: its payload and topic (the rest is a small fixed shape). */
export function messageBytes(msg: unknown): number {
  const m = msg as { payload?: { length?: number } | null; topic?: { length?: number } } | null
  return (m?.payload?.length ?? 0) + (m?.topic?.length ?? 0)
}

/**
 * Guards the router (see the top of this file) and returns a reader of its backlog in
 * messages and payload bytes: the message count alone lets a few large packets
 * (up to maxPacketBytes each) hold far more memory than the mark suggests.
 */
export function guardRouting(mq: unknown): () => { messages: number; bytes: number } {
  const m = mq as LocalEmitter
  const matcher = m._matcher
  if (!matcher) return () => ({ messages: 0, bytes: 0 }) // not an mqemitter: nothing to guard
  const match = matcher.match.bind(matcher)
  matcher.match = (topic: string) => {
    const listeners = match(topic)
    return listeners.length > 0 ? listeners : (DEFERRED as Listener[])
  }
  const queue = toRing(m._messageQueue, messageBytes)
  m._messageQueue = queue
  m._messageCallbacks = toRing(m._messageCallbacks)
  return () => ({ messages: queue.length, bytes: queue.bytes })
}

/**
 * Holds publishers (before their ack) while the broker-wide routing backlog is over
 * one of its high-water marks (messages or bytes), and lets them go as soon as it is
 * back under: one check per turn of the event loop while anyone waits, instead of
 * every waiter polling a timer.
 */
export class RoutingGate {
  private waiters: Array<() => void> = []
  private scheduled = false

  constructor(
    private readonly backlog: () => { messages: number; bytes: number },
    private readonly highWater: () => { messages: number; bytes: number },
    private readonly closing: () => boolean,
  ) {}

  get open(): boolean {
    const b = this.backlog()
    const h = this.highWater()
    return (b.messages <= h.messages && b.bytes <= h.bytes) || this.closing()
  }

  /** Resolves once the backlog is at or under both high-water marks (or the broker closes). */
  wait(): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push(resolve)
      this.schedule()
    })
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(this.check)
  }

  private readonly check = () => {
    this.scheduled = false
    if (this.waiters.length === 0) return
    if (!this.open) return this.schedule()
    for (const w of this.waiters.splice(0)) w()
  }
}
