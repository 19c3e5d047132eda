// Time for simulators. Devices never read Date.now(): they get a Clock, so the
// same device code runs on the wall clock (real MQTT runs, conformance) and on a
// virtual clock that runs a simulated day in seconds (scenarios, fleet bench).
export type TimerId = number

export interface Clock {
  /** True time, Unix ms (virtual or real). */
  now(): number
  setTimeout(fn: () => void, ms: number): TimerId
  clearTimeout(id: TimerId | undefined): void
}

interface Timer {
  id: TimerId
  at: number
  /** Insertion order: timers due at the same instant run first-in first-out. */
  order: number
  fn: () => void
}

/**
 * Discrete-event clock. Timers live in a binary heap; `runUntil(t)` pops them in
 * time order, setting `now()` to each timer's instant before running it. Nothing
 * waits on the wall clock, so a 24 h run costs only the callbacks it executes.
 */
export class VirtualClock implements Clock {
  private heap: Timer[] = []
  private cancelled = new Set<TimerId>()
  private nextId = 1
  private order = 0
  private t: number
  /** Callbacks executed so far (for benchmarks). */
  executed = 0

  constructor(startMs: number) {
    this.t = startMs
  }

  now(): number {
    return this.t
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.nextId++
    this.push({ id, at: this.t + Math.max(0, ms), order: this.order++, fn })
    return id
  }

  clearTimeout(id: TimerId | undefined): void {
    if (id !== undefined) this.cancelled.add(id)
  }

  /** Pending (not cancelled) timers. */
  get pending(): number {
    return this.heap.length - this.cancelled.size
  }

  /** Runs every timer due at or before `endMs`, then leaves the clock at `endMs`. */
  runUntil(endMs: number): void {
    for (;;) {
      const top = this.heap[0]
      if (!top || top.at > endMs) break
      this.pop()
      if (this.cancelled.delete(top.id)) continue
      this.t = top.at
      this.executed++
      top.fn()
    }
    if (endMs > this.t) this.t = endMs
  }

  /** `runUntil(now + ms)`. */
  advance(ms: number): void {
    this.runUntil(this.t + ms)
  }

  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order)
  }

  private push(x: Timer): void {
    const h = this.heap
    h.push(x)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.less(h[i]!, h[p]!)) break
      ;[h[i], h[p]] = [h[p]!, h[i]!]
      i = p
    }
  }

  private pop(): void {
    const h = this.heap
    const last = h.pop()!
    if (h.length === 0) return
    h[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r
      if (m === i) break
      ;[h[i], h[m]] = [h[m]!, h[i]!]
      i = m
    }
  }
}

/**
 * The wall clock, optionally sped up: `speed` 60 makes one real second a simulated
 * minute (timers shrink accordingly). `startMs` anchors simulated time (default now).
 */
export class RealClock implements Clock {
  private readonly realStart = Date.now()
  private readonly timers = new Map<TimerId, NodeJS.Timeout>()
  private nextId = 1

  constructor(
    private readonly speed = 1,
    private readonly startMs = Date.now(),
  ) {
    if (!(speed > 0)) throw new RangeError(`speed must be > 0, got ${speed}`)
  }

  now(): number {
    return Math.round(this.startMs + (Date.now() - this.realStart) * this.speed)
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.nextId++
    const h = setTimeout(() => {
      this.timers.delete(id)
      fn()
    }, Math.max(0, ms) / this.speed)
    this.timers.set(id, h)
    return id
  }

  clearTimeout(id: TimerId | undefined): void {
    if (id === undefined) return
    const h = this.timers.get(id)
    if (h) clearTimeout(h)
    this.timers.delete(id)
  }

  /** Cancels every timer (on shutdown). */
  clearAll(): void {
    for (const h of this.timers.values()) clearTimeout(h)
    this.timers.clear()
  }
}

/**
 * A device's own clock: true time plus its error. Device time runs at
 * (1 + driftPpm·1e-6) of true time from an anchor; `set` moves the anchor (a
 * time sync, or a reset to an old epoch after a power loss).
 */
export class DeviceClock {
  private anchorTrue: number
  private anchorDevice: number

  constructor(
    private readonly clock: Clock,
    public driftPpm = 0,
    offsetMs = 0,
  ) {
    this.anchorTrue = clock.now()
    this.anchorDevice = this.anchorTrue + offsetMs
  }

  now(): number {
    const t = this.clock.now()
    return Math.round(this.anchorDevice + (t - this.anchorTrue) * (1 + this.driftPpm * 1e-6))
  }

  /** Sets the device clock to `deviceMs` at the current true instant. */
  set(deviceMs: number): void {
    this.anchorTrue = this.clock.now()
    this.anchorDevice = deviceMs
  }

  /** Device time minus true time right now, ms. */
  error(): number {
    return this.now() - this.clock.now()
  }
}
