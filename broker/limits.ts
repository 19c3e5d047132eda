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
 * `maxDelayMs`. Entries expire with the window.
 */
export class FlapTracker {
  private readonly attempts = new Map<string, number[]>()

  constructor(
    private readonly allowed: number,
    private readonly windowMs: number,
    private readonly baseDelayMs = 250,
    private readonly maxDelayMs = 10_000,
  ) {}

  /** Records a connect attempt; returns the delay (ms) to impose before answering it. */
  attempt(key: string, now: number): number {
    const recent = (this.attempts.get(key) ?? []).filter((t) => now - t < this.windowMs)
    recent.push(now)
    this.attempts.set(key, recent)
    if (this.attempts.size > 10_000) this.sweep(now)
    const excess = recent.length - this.allowed
    return excess <= 0 ? 0 : Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(excess - 1, 20))
  }

  private sweep(now: number): void {
    for (const [k, ts] of this.attempts) if (ts.every((t) => now - t >= this.windowMs)) this.attempts.delete(k)
  }
}
