// The dedup keys (uplink_seen) are pruned with the retention setting; without it they are kept.
import t from 'tap'
import { pino } from 'pino'
import { createIngest } from '../../ingest/index.ts'
import type { CheckInRecord } from '../../src/store/types.ts'
import { openEmbeddedStore } from '../helpers/store.ts'

const DAY = 86_400_000
const NOW = Date.UTC(2026, 5, 1)
const rec = (deviceId: string, seq: number, receivedAtMs: number): CheckInRecord => ({
  kind: 'checkin',
  deviceId,
  seq,
  deviceTimeMs: NOW - 10 * DAY + seq * 1000,
  receivedAtMs,
  clockFuture: false,
  clockAncient: false,
  tagId: 'TAG',
  method: 'nfc',
  checkpointId: null,
  gridId: null,
})

t.test('retentionDays: keys received before now − retention are pruned at start and then every pruneEveryMs', async (t) => {
  const store = await openEmbeddedStore(t)
  await store.uplinks.write({ records: [rec('dev-keep', 1, NOW - 3 * DAY), rec('dev-prune', 1, NOW - 3 * DAY), rec('dev-prune', 2, NOW - DAY / 2)] })
  // clock estimates of dev-prune 4 and 3 days old and one 1 day old: the first two go with the retention, the newest stays
  for (const [i, age] of [4, 3, 1].entries()) {
    const at = NOW - age * DAY
    const commandId = `prune-sync-${i}`
    await store.commands.enqueue({ commandId, deviceId: 'dev-prune', kind: 'time_sync', body: { kind: 'time_sync', timeSync: { serverTimeMs: at } }, issuedAtMs: at, expiresAtMs: null })
    await store.uplinks.write({ records: [{ kind: 'ack', deviceId: 'dev-prune', seq: 100 + i, deviceTimeMs: at, receivedAtMs: at, clockFuture: false, clockAncient: false, commandId, status: 'ok', receivedDeviceTimeMs: at }] })
  }

  // No retention (the default): nothing is pruned.
  const keep = createIngest({ store, log: pino({ level: 'silent' }), now: () => NOW })
  await keep.close()
  t.same((await store.uplinks.write({ records: [rec('dev-keep', 1, NOW)] })).outcomes, ['duplicate'], 'kept without retention')

  let clock = NOW
  const ingest = createIngest({ store, log: pino({ level: 'silent' }), now: () => clock, options: { retentionDays: 2, pruneEveryMs: 20 } })
  t.teardown(() => ingest.close())
  // The first prune runs at start: dev-keep/1 and dev-prune/1 (3 days old) go, dev-prune/2 (12 h) stays.
  await new Promise((r) => setTimeout(r, 100))
  t.equal(await store.uplinks.pruneSeen(NOW - 2 * DAY), 0, 'nothing left before the cutoff')
  t.equal(await store.clock.prune(NOW - 2 * DAY), 0, 'clock estimates before the cutoff pruned too')
  t.equal((await store.clock.latest('dev-prune'))?.commandId, 'prune-sync-2', 'the latest kept')
  t.same(
    (await store.uplinks.write({ records: [rec('dev-prune', 1, NOW), rec('dev-prune', 2, NOW)] })).outcomes,
    ['new', 'duplicate'],
    'the expired key is claimed again, the recent one is still known',
  )
  t.equal(await store.checkIns.count({ deviceId: 'dev-prune' }), 2, 'no second row for the re-sent check-in')
  // Later runs follow the clock.
  clock = NOW + 3 * DAY
  await new Promise((r) => setTimeout(r, 100))
  t.same((await store.uplinks.write({ records: [rec('dev-prune', 2, NOW)] })).outcomes, ['new'], 'pruned by a later run')
})
