// The identify stage's caches: unknown tags are remembered (negative cache) for
// unknownTtlMs, then asked again, so a tag registered after it was first seen
// is picked up; cache misses of one burst share one store query.
import t from 'tap'
import { pino } from 'pino'
import { createIngest } from '../../ingest/index.ts'
import { openEmbeddedStore } from '../helpers/store.ts'
import { checkin, HASH, msg, NOW, uid } from './fixtures.ts'

t.test('negative cache: an unknown tag registered later is picked up after unknownTtlMs; misses of a burst share one query', async (t) => {
  const store = await openEmbeddedStore(t)
  if (!store) throw new Error('no embedded store')
  let clock = NOW
  let tagQueries = 0
  let deviceQueries = 0
  const byTags = store.checkpoints.byTags.bind(store.checkpoints)
  const getMany = store.devices.getMany.bind(store.devices)
  store.checkpoints.byTags = (tags) => (tagQueries++, byTags(tags))
  store.devices.getMany = (ids) => (deviceQueries++, getMany(ids))
  const ingest = createIngest({ store, log: pino({ level: 'silent' }), now: () => clock, options: { unknownTtlMs: 5_000, lookupTtlMs: 30_000 } })
  t.teardown(() => ingest.close())

  const grid = uid('G')
  await store.grids.create({ id: grid, level: 'district', name: 'g' })
  const devs = [uid('dev'), uid('dev'), uid('dev')]
  for (const id of devs) await store.devices.create({ id, kind: 'patrol', gridId: grid, secretHash: HASH })
  const tag = uid('LATE')

  // A burst from three devices with the same unknown tag: one tag query, one device query.
  const first = await Promise.all(devs.map((id) => ingest.ingest(msg(id, checkin(1, tag)))))
  t.same(first.map((r) => r.outcomes), [['new'], ['new'], ['new']], 'stored (unknown tags are never dropped)')
  t.equal(tagQueries, 1, 'one byTags query for the burst')
  t.equal(deviceQueries, 1, 'one devices query for the burst')

  const cp = await store.checkpoints.create({ id: uid('cp'), gridId: grid, tagId: tag, name: 'late gate' })
  // Within the TTL the tag is still taken as unknown, without asking the store again.
  clock += 4_000
  await ingest.ingest(msg(devs[0] as string, checkin(2, tag)))
  t.equal(tagQueries, 1, 'negative entry served from the cache')
  // After the TTL it is asked again and found.
  clock += 2_000
  await ingest.ingest(msg(devs[0] as string, checkin(3, tag)))
  t.equal(tagQueries, 2, 'asked again after unknownTtlMs')

  const rows = await store.checkIns.list({ from: new Date(NOW - 60_000), to: new Date(NOW + 60_000), deviceId: devs[0] as string })
  const bySeq = new Map(rows.map((r) => [r.seq, r]))
  t.match(bySeq.get(1), { checkpointId: null, unknownTag: true })
  t.match(bySeq.get(2), { checkpointId: null, unknownTag: true }, 'within the TTL: still flagged unknown')
  t.match(bySeq.get(3), { checkpointId: cp.id, unknownTag: false }, 'after the TTL: the registered checkpoint')
})

t.test('an unknown device is remembered as unknown for unknownTtlMs, then registered and accepted', async (t) => {
  const store = await openEmbeddedStore(t)
  if (!store) throw new Error('no embedded store')
  let clock = NOW
  const ingest = createIngest({ store, log: pino({ level: 'silent' }), now: () => clock, options: { unknownTtlMs: 5_000 } })
  t.teardown(() => ingest.close())
  const id = uid('dev')
  t.equal((await ingest.ingest(msg(id, checkin(1, 'T')))).rejected, 'GP_INGEST_UNKNOWN_DEVICE')
  await store.devices.create({ id, kind: 'patrol', gridId: null, secretHash: HASH })
  t.equal((await ingest.ingest(msg(id, checkin(1, 'T')))).rejected, 'GP_INGEST_UNKNOWN_DEVICE', 'still unknown within the TTL')
  clock += 5_001
  t.same((await ingest.ingest(msg(id, checkin(1, 'T')))).outcomes, ['new'], 'accepted after the TTL')
})
