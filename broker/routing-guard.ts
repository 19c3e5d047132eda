// mqemitter (1.2.0's router) recurses synchronously through its queue when a queued
// message has no listener left — e.g. right after a subscriber with a large backlog
// disconnects — and dies with "Maximum call stack size exceeded" (open upstream,
// mcollina/mqemitter PR #204). One local catch-all listener that completes on the
// next turn of the event loop gives every message a match, so the queue is always
// drained asynchronously. Registered on the local emitter only (never on Redis).
type LocalEmitter = {
  on(topic: string, fn: (msg: unknown, done: () => void) => void): unknown
  _on?: (topic: string, fn: (msg: unknown, done: () => void) => void) => unknown
}

export function guardRouting(mq: unknown): void {
  const m = mq as LocalEmitter
  const register = (m._on ?? m.on).bind(m)
  register('#', (_msg, done) => setImmediate(done))
}
