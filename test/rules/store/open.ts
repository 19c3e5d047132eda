// Opens the store for rules tests (one per test file: PGlite costs 2-3 s and
// ~400 MiB) on the embedded driver, or on a throwaway server database when
// DATABASE_URL is set. Not a test file.
import type { Store } from '../../../src/store/types.ts'
import { openEmbeddedStore, openServerStore } from '../../helpers/store.ts'
import type { Generated } from './generate.ts'

interface T {
  teardown(fn: () => unknown): void
}

export type Driver = 'embedded' | 'server'

export async function openRulesStore(t: T, driver: Driver): Promise<Store | undefined> {
  return driver === 'embedded' ? openEmbeddedStore(t) : openServerStore(t)
}

/** The drivers to run a suite on: embedded always, server when DATABASE_URL is set. */
export const drivers = (): Driver[] => (process.env['DATABASE_URL'] ? ['embedded', 'server'] : ['embedded'])

/** JSON round trip: compares what a result says, not how its objects were built. */
export const plain = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T

/** Loads a generated data set: grids, registered checkpoints, a time sync per clock offset, the records. */
export async function loadGenerated(store: Store, g: Generated, prefix: string): Promise<void> {
  for (const p of g.plans) await store.grids.create({ id: p.gridId, level: 'district', name: p.gridId })
  for (const c of g.registered) await store.checkpoints.create({ id: c.id, gridId: c.gridId, tagId: c.tagId, name: c.id })
  for (const [n, o] of g.offsets.entries()) {
    // One time-sync round trip with zero delay, sent and acknowledged (ack seq o.seq) at
    // o.measuredAt: offset = t1 - t0 (clock-offset.ts).
    const commandId = `${prefix}ts${n}`
    const t0 = o.measuredAt
    await store.commands.enqueue({ commandId, deviceId: o.deviceId, kind: 'time_sync', body: { timeSync: { serverTimeMs: t0 } }, issuedAtMs: t0, expiresAtMs: null })
    await store.uplinks.write({
      records: [
        { kind: 'ack', deviceId: o.deviceId, seq: o.seq, deviceTimeMs: t0 + o.offsetMs, receivedAtMs: t0, clockFuture: false, clockAncient: false, commandId, status: 'ok', receivedDeviceTimeMs: t0 + o.offsetMs },
      ],
    })
  }
  await store.uplinks.write({ records: g.records })
}
