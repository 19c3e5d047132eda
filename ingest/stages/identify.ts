import type { Uplink } from '../../firmware-protocol/index.ts'
import type { Store, UplinkRecord } from '../../src/store/types.ts'
import { rejectWith } from '../rejects.ts'
import type { Work } from '../types.ts'
import { toRecord } from '../records.ts'
import { matchGeofence, type Geofence } from './geofence.ts'

export interface LookupOptions {
  /** How long a found device / registered tag is cached. */
  ttlMs: number
  /** How long a missing device / unregistered tag is remembered as missing (negative cache). */
  missingTtlMs: number
  /** Entries per cache; the oldest are dropped past it (bounded memory). */
  maxEntries: number
}

interface Entry<V> {
  at: number
  /** undefined: looked up and not found (negative entry). */
  value: V | undefined
}

/**
 * A TTL cache in front of one batched store query. Keys missing from the cache
 * and asked in the same turn of the event loop (setImmediate) are looked up
 * together in ONE query, and a key already being looked up is not asked again —
 * so a burst of messages from many clients costs one round trip, not one each.
 * Found and missing keys are both cached (missing ones for missingTtlMs), in a
 * Map bounded to maxEntries (oldest dropped first).
 */
class BatchedCache<V> {
  private cache = new Map<string, Entry<V>>()
  private inflight = new Map<string, Promise<V | undefined>>()
  private pending = new Map<string, { resolve(v: V | undefined): void; reject(e: unknown): void }[]>()
  private scheduled = false

  constructor(
    private load: (keys: string[]) => Promise<Map<string, V>>,
    private opts: LookupOptions,
    private now: () => number,
  ) {}

  /** Values for keys (found ones only), at most one store query for all cache misses. */
  async getMany(keys: Iterable<string>): Promise<Map<string, V | undefined>> {
    const out = new Map<string, V | undefined>()
    const waits: Array<Promise<void>> = []
    const t = this.now()
    for (const k of keys) {
      if (out.has(k)) continue
      const hit = this.cache.get(k)
      if (hit && t - hit.at < (hit.value === undefined ? this.opts.missingTtlMs : this.opts.ttlMs)) {
        out.set(k, hit.value)
        continue
      }
      out.set(k, undefined)
      waits.push(this.ask(k).then((v) => void out.set(k, v)))
    }
    if (waits.length > 0) await Promise.all(waits)
    return out
  }

  /** The fresh cache entry of k (entry.value undefined = known missing), or undefined on a miss. No query. */
  peek(k: string): Entry<V> | undefined {
    const hit = this.cache.get(k)
    return hit && this.now() - hit.at < (hit.value === undefined ? this.opts.missingTtlMs : this.opts.ttlMs) ? hit : undefined
  }

  /** Forgets cached entries (all when no keys are given): the next message asks the store. */
  invalidate(keys?: Iterable<string>): void {
    if (!keys) this.cache.clear()
    else for (const k of keys) this.cache.delete(k)
  }

  get size(): number {
    return this.cache.size
  }

  private ask(k: string): Promise<V | undefined> {
    let p = this.inflight.get(k)
    if (p) return p
    p = new Promise<V | undefined>((resolve, reject) => {
      const list = this.pending.get(k)
      if (list) list.push({ resolve, reject })
      else this.pending.set(k, [{ resolve, reject }])
    })
    this.inflight.set(k, p)
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => void this.flush())
    }
    return p
  }

  private async flush(): Promise<void> {
    this.scheduled = false
    const batch = this.pending
    this.pending = new Map()
    const keys = [...batch.keys()]
    try {
      const found = await this.load(keys)
      const at = this.now()
      for (const k of keys) {
        const value = found.get(k)
        this.cache.delete(k) // re-insert at the end: Map order is age order
        this.cache.set(k, { at, value })
        this.inflight.delete(k)
        for (const w of batch.get(k) ?? []) w.resolve(value)
      }
      for (const k of this.cache.keys()) {
        if (this.cache.size <= this.opts.maxEntries) break
        this.cache.delete(k)
      }
    } catch (err) {
      // Database unreachable: the messages fail (not acked; the broker retries them).
      for (const k of keys) {
        this.inflight.delete(k)
        for (const w of batch.get(k) ?? []) w.reject(err)
      }
    }
  }
}

/** Short-lived caches of device → grid and tag → checkpoint, positive and negative. */
export class Lookups {
  private devices: BatchedCache<{ gridId: string | null; disabled: boolean }>
  private tags: BatchedCache<string>
  private fences: BatchedCache<Geofence[]>

  constructor(store: Store, opts: LookupOptions, now: () => number) {
    // A grid's geofences (checkpoints with coordinates), for GPS check-ins.
    this.fences = new BatchedCache(
      async (grids) =>
        new Map(
          await Promise.all(
            grids.map(async (g): Promise<[string, Geofence[]]> => [
              g,
              (await store.checkpoints.listByGrid(g)).flatMap((c) => (c.lat !== null && c.lon !== null ? [{ checkpointId: c.id, lat: c.lat, lon: c.lon, radiusM: c.radiusM }] : [])),
            ]),
          ),
        ),
      opts,
      now,
    )
    this.devices = new BatchedCache(
      async (ids) => new Map([...(await store.devices.getMany(ids))].map(([id, d]) => [id, { gridId: d.gridId, disabled: d.disabled }])),
      opts,
      now,
    )
    this.tags = new BatchedCache(async (tags) => new Map([...(await store.checkpoints.byTags(tags))].map(([t, cp]) => [t, cp.checkpointId])), opts, now)
  }

  /** The geofences of a grid (cached like tags). */
  async geofences(gridId: string): Promise<Geofence[]> {
    return (await this.fences.getMany([gridId])).get(gridId) ?? []
  }

  async device(id: string): Promise<{ gridId: string | null; disabled: boolean } | undefined> {
    return (await this.devices.getMany([id])).get(id)
  }

  /** The device from the cache alone: `{ value }` on a hit (value undefined = known missing), undefined on a miss. */
  deviceCached(id: string): { value: { gridId: string | null; disabled: boolean } | undefined } | undefined {
    return this.devices.peek(id)
  }

  /** tag → checkpoint from the cache alone, or undefined when any tag is not cached. */
  checkpointsCached(tagIds: string[]): Map<string, string> | undefined {
    const out = new Map<string, string>()
    for (const t of tagIds) {
      const hit = this.tags.peek(t)
      if (!hit) return undefined
      if (hit.value !== undefined) out.set(t, hit.value)
    }
    return out
  }

  /**
   * One tag (a single check-in, the hot path): a view answering for that tag from the
   * cache (no Map per message), or undefined when it is not cached.
   */
  checkpointCached(tagId: string): { get(tagId: string): string | undefined } | undefined {
    const hit = this.tags.peek(tagId)
    if (!hit) return undefined
    this.oneTag.tagId = tagId
    this.oneTag.checkpointId = hit.value
    return this.oneTag
  }
  // Valid until the next checkpointCached call: used synchronously by resolved() only.
  private oneTag = {
    tagId: '',
    checkpointId: undefined as string | undefined,
    get(t: string): string | undefined {
      return t === this.tagId ? this.checkpointId : undefined
    },
  }

  /** tag → checkpoint for the registered tags; an unregistered tag is remembered as such for missingTtlMs. */
  async checkpoints(tagIds: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>()
    for (const [t, cp] of await this.tags.getMany(tagIds)) if (cp !== undefined) out.set(t, cp)
    return out
  }

  /** A tag was registered (or changed): forget what is cached about it (all tags when none given). */
  invalidateTags(tagIds?: string[]): void {
    this.tags.invalidate(tagIds)
  }

  /** A device was registered, disabled or moved: forget what is cached about it (all when none given). */
  invalidateDevices(ids?: string[]): void {
    this.devices.invalidate(ids)
  }

  get sizes(): { devices: number; tags: number } {
    return { devices: this.devices.size, tags: this.tags.size }
  }
}

/**
 * Device → assigned grid, tag → checkpoint. An unknown tag is kept with
 * checkpoint NULL (flagged unknown_tag), never dropped.
 */
export function identify(w: Work, lookups: Lookups): void | Promise<void> {
  if (w.envelopes.length === 1) {
    // One envelope (the hot path): no tag array, no Map per message.
    const e = w.envelopes[0] as Uplink
    const tag = e.kind === 'checkin' && e.checkin.tagId !== '' ? e.checkin.tagId : undefined
    const device = lookups.deviceCached(w.msg.deviceId)
    const checkpoints = device && (tag === undefined ? NO_CHECKPOINTS : lookups.checkpointCached(tag))
    if (device && checkpoints) return resolved(w, lookups, device.value, checkpoints)
    return identifyAsync(w, lookups, tag === undefined ? [] : [tag])
  }
  const tags = w.envelopes.flatMap((e: Uplink) => (e.kind === 'checkin' && e.checkin.tagId !== '' ? [e.checkin.tagId] : []))
  // Everything cached (the common case): no promise, no microtask.
  const device = lookups.deviceCached(w.msg.deviceId)
  const checkpoints = device && lookups.checkpointsCached(tags)
  if (device && checkpoints) return resolved(w, lookups, device.value, checkpoints)
  return identifyAsync(w, lookups, tags)
}

async function identifyAsync(w: Work, lookups: Lookups, tags: string[]): Promise<void> {
  // Both lookups at once (each joins the current turn's batched query).
  const [device, checkpoints] = await Promise.all([lookups.device(w.msg.deviceId), tags.length > 0 ? lookups.checkpoints(tags) : new Map<string, string>()])
  return resolved(w, lookups, device, checkpoints)
}

const NO_CHECKPOINTS: ReadonlyMap<string, string> = new Map()

function resolved(w: Work, lookups: Lookups, device: { gridId: string | null; disabled: boolean } | undefined, checkpoints: { get(tagId: string): string | undefined }): void | Promise<void> {
  if (!device) return rejectWith(w, 'GP_INGEST_UNKNOWN_DEVICE', `device "${w.msg.deviceId}" is not registered`, undefined)
  if (device.disabled) return rejectWith(w, 'GP_INGEST_DISABLED_DEVICE', `device "${w.msg.deviceId}" is disabled`, undefined)
  const ctx = { deviceId: w.msg.deviceId, receivedAtMs: w.receivedAtMs, gridId: device.gridId, checkpoints, source: { topic: w.msg.topic, payload: w.msg.payload } }
  w.records = w.envelopes.map((e): UplinkRecord => toRecord(e, ctx))
  // GPS check-ins without a registered tag: the geofence of the device's grid that
  // holds the fix (PROTOCOL.md §3.2); none found → kept, flagged unknown, as a tag would be.
  let gps: UplinkRecord[] | undefined // no array unless a GPS check-in needs a geofence
  for (const r of w.records) if (r.kind === 'checkin' && r.checkpointId === null && r.method === 'gps' && r.lat !== undefined && r.lon !== undefined) (gps ??= []).push(r)
  if (gps !== undefined && device.gridId !== null) {
    return lookups.geofences(device.gridId).then((fences) => {
      for (const r of gps) if (r.kind === 'checkin') r.checkpointId = matchGeofence(fences, { lat: r.lat!, lon: r.lon!, accuracyM: r.accuracyM })
    })
  }
}
