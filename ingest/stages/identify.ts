import type { Uplink } from '../../firmware-protocol/index.ts'
import type { Store, UplinkRecord } from '../../src/store/types.ts'
import { rejectWith } from '../rejects.ts'
import type { Work } from '../types.ts'
import { toRecord } from '../records.ts'

/** Short-lived caches of device → grid and tag → checkpoint. */
export class Lookups {
  private devices = new Map<string, { at: number; gridId: string | null; disabled: boolean } | { at: number; missing: true }>()
  private tags = new Map<string, { at: number; checkpointId: string }>()
  constructor(
    private store: Store,
    private ttlMs: number,
    private now: () => number,
  ) {}

  async device(id: string): Promise<{ gridId: string | null; disabled: boolean } | undefined> {
    const hit = this.devices.get(id)
    if (hit && this.now() - hit.at < this.ttlMs) return 'missing' in hit ? undefined : hit
    const d = await this.store.devices.get(id)
    const entry = d ? { at: this.now(), gridId: d.gridId, disabled: d.disabled } : { at: this.now(), missing: true as const }
    this.devices.set(id, entry)
    return d ? { gridId: d.gridId, disabled: d.disabled } : undefined
  }

  /** Known tags are cached; unknown ones are asked again each time (a tag may be registered any minute). */
  async checkpoints(tagIds: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>()
    const ask: string[] = []
    for (const t of new Set(tagIds)) {
      const hit = this.tags.get(t)
      if (hit && this.now() - hit.at < this.ttlMs) out.set(t, hit.checkpointId)
      else ask.push(t)
    }
    if (ask.length > 0) {
      for (const [tag, cp] of await this.store.checkpoints.byTags(ask)) {
        this.tags.set(tag, { at: this.now(), checkpointId: cp.checkpointId })
        out.set(tag, cp.checkpointId)
      }
    }
    return out
  }
}

/**
 * Device → assigned grid, tag → checkpoint. An unknown tag is kept with
 * checkpoint NULL (flagged unknown_tag), never dropped.
 */
export async function identify(w: Work, lookups: Lookups): Promise<void> {
  const device = await lookups.device(w.msg.deviceId)
  if (!device) return rejectWith(w, 'GP_INGEST_UNKNOWN_DEVICE', `device "${w.msg.deviceId}" is not registered`, undefined)
  if (device.disabled) return rejectWith(w, 'GP_INGEST_DISABLED_DEVICE', `device "${w.msg.deviceId}" is disabled`, undefined)
  const tags = w.envelopes.flatMap((e: Uplink) => (e.kind === 'checkin' && e.checkin.tagId !== '' ? [e.checkin.tagId] : []))
  const checkpoints = tags.length > 0 ? await lookups.checkpoints(tags) : new Map<string, string>()
  const source = { topic: w.msg.topic, payload: w.msg.payload }
  w.records = w.envelopes.map(
    (e): UplinkRecord => toRecord(e, { deviceId: w.msg.deviceId, receivedAtMs: w.receivedAtMs, gridId: device.gridId, checkpoints, source }),
  )
}
