// Forward clock steps found from the uplinks themselves (PROTOCOL.md §6, "How the
// server times an envelope"). An envelope received online bounds its device's clock
// from below: device time − receipt time = offset − delay, and delay ≥ 0, so
// `deviceTimeMs − receivedAtMs ≤ offset` (up to the estimate's own error, ≤ its
// sync's delay / 2). One that exceeds the device's latest measurement by more than
// the tolerance proves the clock jumped forward (or drifted far) since: the rows
// recorded before the jump are kept on that measurement's offset by a boundary row
// (store.clock.recordStep), and a time sync measures the new one at once. A
// backward step cannot be told from network or buffer delay this way: the next
// sync finds it, as before.
import type { Logger } from 'pino'
import { Counter, type Registry } from 'prom-client'
import type { ClockEstimate, Store } from '../store/types.ts'

/** A message stored by the ingest (structurally ingest's IngestStored: src/main.ts wires one to the other). */
export interface ClockEvidence {
  deviceId: string
  receivedAtMs: number
  /** The envelope as received: a batch's own device time is its upload time (its items are older). */
  kind: string
  seq: number
  deviceTimeMs: number
  /** It carried a command acknowledgement: a time sync's may have measured the clock anew. */
  acks: boolean
}

/** What the dispatcher made of a request for a time sync after a step: sent, or why not. */
export type StepSyncOutcome = 'sent' | 'offline' | 'measuring' | 'limited'

export interface StepSyncRequest {
  deviceId: string
  /** Receipt of the envelope that showed the jump: a sync sent after it measures the new clock. */
  receivedAtMs: number
  /** The measurement the jump was found against. */
  estimate: ClockEstimate
}

export interface ClockStepOptions {
  store: Pick<Store, 'clock'>
  log: Logger
  registry?: Registry | undefined
  now: () => number
  /** Asks for a time sync to the device now (the dispatcher rate-limits it). */
  requestSync: (r: StepSyncRequest) => Promise<StepSyncOutcome>
  /**
   * How far an envelope may run ahead of the estimate before it counts as a step, plus half the
   * estimate's measured delay (its own error). Default 10 s: well above what a clock drifts between
   * two syncs (100 ppm over 6 h is 2.2 s), well below what the rules care about.
   */
  toleranceMs?: number
  /** How long a device's latest measurement is used before it is read again (an ack it sends reads it at once). Default 10 min. */
  cacheMs?: number
  /** Envelopes waiting to be looked at; past it they are dropped (counted, never blocking the ingest). Default 100 000. */
  maxQueued?: number
  /** Devices remembered; the least recently loaded are forgotten past it. Default 200 000. */
  maxDevices?: number
}

export interface ClockSteps {
  /** Called by the ingest with every stored message (cheap: queued, looked at asynchronously). */
  observe(e: ClockEvidence): void
  /** Resolves once everything observed so far has been looked at. */
  idle(): Promise<void>
  close(): Promise<void>
}

export type Verdict = 'skip' | 'consistent' | 'late' | 'ahead'

/**
 * How an envelope stands against the device's latest measurement: `skip` when it is no evidence
 * (no measurement; created before the measuring ack, by seq, or for a batch received before it),
 * else by how far its `deviceTime − receipt` exceeds the offset: `ahead` past the tolerance (a
 * forward step), `late` below minus the tolerance (network or buffer delay: proves nothing),
 * `consistent` within. `excessMs`: that difference.
 */
export function judge(est: ClockEstimate | undefined, e: ClockEvidence, toleranceMs: number): { verdict: Verdict; excessMs: number } {
  if (!est) return { verdict: 'skip', excessMs: 0 }
  if (e.kind === 'batch' ? e.receivedAtMs <= est.measuredAt.getTime() : est.seq !== null && e.seq <= est.seq) return { verdict: 'skip', excessMs: 0 }
  const excessMs = e.deviceTimeMs - e.receivedAtMs - est.offsetMs
  const tol = toleranceMs + est.delayMs / 2
  return { verdict: excessMs > tol ? 'ahead' : excessMs < -tol ? 'late' : 'consistent', excessMs }
}

interface DeviceState {
  est: ClockEstimate | undefined
  loadedAtMs: number
  /** The highest seq after est's checked consistent (a direct envelope within ± the tolerance); 0: none. */
  consistent: number
  /** A step was found since est: no second boundary before a new measurement. */
  stepped: boolean
}

export function createClockSteps(o: ClockStepOptions): ClockSteps {
  const toleranceMs = o.toleranceMs ?? 10_000
  const cacheMs = o.cacheMs ?? 600_000
  const maxQueued = o.maxQueued ?? 100_000
  const maxDevices = o.maxDevices ?? 200_000
  const log = o.log.child({ component: 'clock-steps' })
  const detected = new Counter({
    name: 'gridpatrol_clock_steps_detected_total',
    help: "Device clocks found to have jumped forward since their last time sync, from an envelope's device time against its receipt (PROTOCOL.md §6)",
    registers: o.registry ? [o.registry] : [],
  })
  const devices = new Map<string, DeviceState>()
  let queue: ClockEvidence[] = []
  let dropped = 0
  let draining: Promise<void> | undefined
  let closed = false

  const fresh = (est: ClockEstimate | undefined): DeviceState => ({
    est,
    loadedAtMs: o.now(),
    consistent: 0,
    stepped: est?.stepSuspectedAt != null,
  })
  const same = (a: ClockEstimate | undefined, b: ClockEstimate | undefined) => a?.measuredAt.getTime() === b?.measuredAt.getTime()

  /** Replaces what is known of a device by what the store holds; kept as is while the measurement is the same. */
  function remember(deviceId: string, est: ClockEstimate | undefined): DeviceState {
    const prev = devices.get(deviceId)
    const next = prev && same(prev.est, est) ? { ...prev, est, loadedAtMs: o.now(), stepped: prev.stepped || est?.stepSuspectedAt != null } : fresh(est)
    devices.delete(deviceId) // re-inserted: the Map's order is the loading order
    devices.set(deviceId, next)
    if (devices.size > maxDevices) devices.delete(devices.keys().next().value as string)
    return next
  }

  async function load(ids: string[]): Promise<void> {
    const found = new Map((await o.store.clock.latestOf(ids)).map((e) => [e.deviceId, e]))
    for (const id of ids) remember(id, found.get(id))
  }

  async function suspect(e: ClockEvidence, st: DeviceState): Promise<void> {
    // Confirmed against the store's latest measurement first: one read per suspicion, not per envelope.
    const latest = await o.store.clock.latest(e.deviceId)
    if (!same(latest, st.est)) {
      st = remember(e.deviceId, latest)
      const again = judge(st.est, e, toleranceMs)
      if (again.verdict === 'consistent' && e.kind !== 'batch') st.consistent = Math.max(st.consistent, e.seq)
      if (again.verdict !== 'ahead') return
    } else if (latest?.stepSuspectedAt) st.stepped = true
    const est = st.est as ClockEstimate
    const { excessMs } = judge(est, e, toleranceMs)
    const jumpS = Math.round(excessMs / 100) / 10
    if (!st.stepped) {
      st.stepped = true
      detected.inc()
      // The boundary: the last envelope known consistent (else the one before), when after the estimate's ack.
      const cand = e.kind === 'batch' ? st.consistent : st.consistent > 0 && st.consistent < e.seq ? st.consistent : e.seq - 1
      const boundary = est.seq !== null && cand > est.seq ? cand : undefined
      const recorded =
        boundary !== undefined && (await o.store.clock.recordStep({ deviceId: e.deviceId, seq: boundary, estimateMeasuredAtMs: est.measuredAt.getTime(), atMs: o.now() }))
      if (recorded) {
        log.warn(
          { deviceId: e.deviceId, jumpS, seq: e.seq || undefined, keptUpToSeq: boundary, offsetMs: Math.round(est.offsetMs) },
          `device clock jumped ${jumpS} s forward since its last time sync: its rows up to seq ${boundary} keep that sync's offset; a time sync measures the new one`,
        )
      } else {
        if (boundary !== undefined) st.loadedAtMs = 0 // a measurement or a step came first: read again next time
        log.info(
          { deviceId: e.deviceId, jumpS, seq: e.seq || undefined, offsetMs: Math.round(est.offsetMs) },
          `device clock ${jumpS} s ahead of its last time sync (stepped right after it, or nothing to keep before the jump); a time sync measures it`,
        )
      }
    }
    const outcome = await o.requestSync({ deviceId: e.deviceId, receivedAtMs: e.receivedAtMs, estimate: est })
    log.debug({ deviceId: e.deviceId, jumpS, outcome }, 'time sync after a clock step')
  }

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const slice = queue
      queue = []
      try {
        const now = o.now()
        const stale = new Set<string>()
        for (const e of slice) {
          const st = devices.get(e.deviceId)
          // an ack was committed before we heard of it: a new measurement is read now
          if (e.acks || !st || now - st.loadedAtMs > cacheMs) stale.add(e.deviceId)
        }
        if (stale.size > 0) await load([...stale])
        for (const e of slice) {
          const st = devices.get(e.deviceId)
          if (!st) continue // forgotten (maxDevices) meanwhile
          const { verdict } = judge(st.est, e, toleranceMs)
          if (verdict === 'consistent' && e.kind !== 'batch' && !st.stepped) st.consistent = Math.max(st.consistent, e.seq)
          else if (verdict === 'ahead') await suspect(e, st)
        }
      } catch (err) {
        log.warn({ err, envelopes: slice.length }, 'clock step check failed; those envelopes are not looked at again')
      }
    }
    if (dropped > 0) {
      log.warn({ dropped }, 'clock step check behind: envelopes not looked at')
      dropped = 0
    }
  }

  /** One drain at a time, after the caller's turn (the ingest's ack is not held); what arrives meanwhile is the next one's. */
  function schedule(): void {
    if (draining || queue.length === 0) return
    draining = Promise.resolve()
      .then(drain)
      .finally(() => {
        draining = undefined
        schedule()
      })
  }

  return {
    observe(e) {
      if (closed) return
      if (queue.length >= maxQueued) {
        dropped++
        return
      }
      queue.push(e)
      schedule()
    },
    async idle() {
      while (draining) await draining
    },
    async close() {
      closed = true
      while (draining) await draining
    },
  }
}
