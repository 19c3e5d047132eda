// Per-client limits as small pure state machines; callers pass `now` (ms).

/** Token bucket: `rate` tokens per second, at most `burst` saved up. */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst
    this.last = now
  }

  /** Takes one token; returns 0 when granted now, else the ms to wait (the token is reserved). */
  take(now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate)
    this.last = now
    this.tokens -= 1
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.rate) * 1000)
  }
}

/**
 * Connection flapping: more than `allowed` connects of one client id inside
 * `windowMs` are slowed down, the delay doubling with each extra attempt up to
 * `maxDelayMs`.
 *
 * Memory does not grow with the number of well-behaved clients: connects are first
 * counted in a fixed table of counters indexed by a hash of the client id (the current
 * window and the previous one, weighted by how much of it still overlaps). A client id
 * is tracked exactly (its attempt times) only once its slot's count passes `allowed`;
 * a slot shared by unrelated ids can only over-count, so an id whose estimate stays
 * within the limit is never slowed down, and one tracked exactly is judged on its own
 * attempts. Exact entries expire with the window.
 */
export class FlapTracker {
  private readonly exact = new Map<string, number[]>()
  private readonly slots: number
  private current: Uint16Array
  private previous: Uint16Array
  private windowStart = -Infinity
  private nextSweep = 0

  constructor(
    private readonly allowed: number,
    private readonly windowMs: number,
    private readonly baseDelayMs = 250,
    private readonly maxDelayMs = 10_000,
    slotsLog2 = 16,
  ) {
    this.slots = 1 << slotsLog2
    this.current = new Uint16Array(this.slots)
    this.previous = new Uint16Array(this.slots)
  }

  /** Records a connect attempt; returns the delay (ms) to impose before answering it. */
  attempt(key: string, now: number): number {
    this.roll(now)
    const tracked = this.exact.get(key)
    let count: number
    if (tracked) {
      const recent = tracked.filter((t) => now - t < this.windowMs)
      recent.push(now)
      this.exact.set(key, recent)
      count = recent.length
    } else {
      const i = hash(key) & (this.slots - 1)
      if (this.current[i]! < 0xffff) this.current[i]!++
      const overlap = 1 - (now - this.windowStart) / this.windowMs
      const estimate = this.current[i]! + Math.ceil(this.previous[i]! * Math.max(0, overlap))
      if (estimate <= this.allowed) return 0
      // Over the limit by the estimate: from now on this id is counted exactly, starting
      // from the estimate (attempts spread evenly over the window: never more than seen).
      const seeded = Math.min(estimate, this.allowed + 1)
      this.exact.set(key, Array.from({ length: seeded }, (_, k) => now - ((seeded - 1 - k) * this.windowMs) / (2 * seeded)))
      count = seeded
    }
    if (now >= this.nextSweep) {
      this.nextSweep = now + 1000
      for (const [k, ts] of this.exact) if (now - (ts[ts.length - 1] ?? 0) >= this.windowMs) this.exact.delete(k)
    }
    const excess = count - this.allowed
    return excess <= 0 ? 0 : Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(excess - 1, 20))
  }

  private roll(now: number): void {
    if (now - this.windowStart < this.windowMs) return
    const skipped = now - this.windowStart >= 2 * this.windowMs
    ;[this.previous, this.current] = [this.current, this.previous]
    this.current.fill(0)
    if (skipped) this.previous.fill(0)
    this.windowStart = now
  }
}

/** FNV-1a over the UTF-16 code units. */
function hash(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h >>> 0
}
