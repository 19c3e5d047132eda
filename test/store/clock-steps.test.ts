// Step boundaries in clock_offsets (store.clock.recordStep, PROTOCOL.md §6): recorded only
// after the device's latest measurement and past its seq, once per measurement; a sync
// acknowledged at the very millisecond of the finding is still stored; latest()/latestOf()
// name measurements only; prune keeps each device's latest row and latest measurement.
// Both drivers.
import t from 'tap'
import type { CheckInRecord, Store } from '../../src/store/types.ts'
import { openEmbeddedStore, openServerStore } from '../helpers/store.ts'

const T0 = Date.UTC(2025, 2, 1, 8)
const MIN = 60_000

/** A time sync acknowledged with `seq` at `at` by a clock `offsetMs` ahead (zero delay), as the ingest writes it. */
async function sync(store: Store, dev: string, seq: number, offsetMs: number, at: number): Promise<void> {
  const commandId = `${dev}-sync-${seq}`
  await store.commands.enqueue({ commandId, deviceId: dev, kind: 'time_sync', body: { timeSync: { serverTimeMs: at } }, issuedAtMs: at, expiresAtMs: null })
  await store.uplinks.write({
    records: [{ kind: 'ack', deviceId: dev, seq, deviceTimeMs: at + offsetMs, receivedAtMs: at, clockFuture: false, clockAncient: false, commandId, status: 'ok', receivedDeviceTimeMs: at + offsetMs }],
  })
}

const scan = (dev: string, tag: string, seq: number, trueAt: number, offsetMs: number): CheckInRecord => ({
  kind: 'checkin', deviceId: dev, seq, deviceTimeMs: trueAt + offsetMs, receivedAtMs: trueAt, clockFuture: false, clockAncient: false,
  tagId: tag, method: 'nfc', checkpointId: null, gridId: null,
})

for (const driver of ['embedded', 'server'] as const) {
  t.test(`recordStep, latest, prune (${driver})`, async (t) => {
    const store = driver === 'embedded' ? await openEmbeddedStore(t) : await openServerStore(t)
    if (!store) return
    const dev = `cst-${driver}`
    await sync(store, dev, 4, 1000, T0)
    const step = { deviceId: dev, estimateMeasuredAtMs: T0, atMs: T0 + 10 * MIN }
    t.equal(await store.clock.recordStep({ ...step, seq: 4 }), false, 'not at or before the measurement\'s seq')
    t.equal(await store.clock.recordStep({ ...step, seq: 9, estimateMeasuredAtMs: T0 - 1 }), false, 'not against another measurement than the latest')
    t.equal(await store.clock.recordStep({ ...step, seq: 9 }), true)
    t.equal(await store.clock.recordStep({ ...step, seq: 10 }), false, 'once per measurement')
    t.match(await store.clock.latest(dev), { seq: 4, offsetMs: 1000, stepSuspectedAt: new Date(T0 + 10 * MIN) }, 'latest: the measurement, a step pending')
    t.match(await store.clock.latestOf([dev]), [{ seq: 4, stepSuspectedAt: new Date(T0 + 10 * MIN) }])
    // the sync sent at the finding, acknowledged within the same millisecond
    await sync(store, dev, 11, 3 * MIN, T0 + 10 * MIN)
    t.match(await store.clock.latest(dev), { seq: 11, offsetMs: 3 * MIN, stepSuspectedAt: null }, 'its measurement is stored, and is the latest')
    t.same(
      (await store.clock.history(dev)).map((r) => [r.source, r.seq, r.offsetMs, r.commandId]),
      [['sync', 4, 1000, `${dev}-sync-4`], ['step', 9, 1000, null], ['sync', 11, 3 * MIN, `${dev}-sync-11`]],
      'the boundary repeats the measurement before it, between it and the next',
    )

    // prune: a boundary that is a device's latest row keeps the measurement before it too
    const other = `cst2-${driver}`
    await sync(store, other, 2, 0, T0)
    t.equal(await store.clock.recordStep({ deviceId: other, seq: 5, estimateMeasuredAtMs: T0, atMs: T0 + MIN }), true)
    await store.clock.prune(T0 + 60 * MIN)
    t.same((await store.clock.history(other)).map((r) => r.source), ['sync', 'step'], 'both kept')
    t.match(await store.clock.latest(other), { seq: 2 })
    t.same((await store.clock.history(dev)).map((r) => r.seq), [11], 'a measurement after them: the older rows go')
  })
}

for (const driver of ['embedded', 'server'] as const) {
  t.test(`the sync after a boundary re-times only the rows after it, and touched() finds them (${driver})`, async (t) => {
    const store = driver === 'embedded' ? await openEmbeddedStore(t) : await openServerStore(t)
    if (!store) return
    const dev = `cst3-${driver}`
    await sync(store, dev, 1, 0, T0)
    // rows 2–3 on the right clock (tag BEFORE), row 4 after a +3 min jump (tag AFTER)
    await store.uplinks.write({ records: [scan(dev, 'BEFORE', 2, T0 + 10 * MIN, 0), scan(dev, 'BEFORE', 3, T0 + 20 * MIN, 0)] })
    await store.uplinks.write({ records: [scan(dev, 'AFTER', 4, T0 + 30 * MIN, 3 * MIN)] })
    t.equal(await store.clock.recordStep({ deviceId: dev, seq: 3, estimateMeasuredAtMs: T0, atMs: T0 + 30 * MIN }), true)
    await sync(store, dev, 5, 3 * MIN, T0 + 30 * MIN + 500)
    // the scheduler's next window holds the step sync: only the row it re-times
    const touched = await store.coverage.touched(T0 + 30 * MIN, T0 + 31 * MIN)
    t.same(
      touched.map((x) => [x.tag, x.firstAtMs]),
      [['AFTER', T0 + 30 * MIN]],
      'only the row after the jump, at its true time: the rows up to the boundary keep their offset and are not touched',
    )
  })
}
