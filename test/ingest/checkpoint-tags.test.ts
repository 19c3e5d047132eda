// Several tags per checkpoint through the real ingest path: a replacement tag
// added to a checkpoint resolves to it; a removed tag is an unknown tag again
// once the lookup cache's entry expires (lookupTtlMs); a check-in stored before
// its tag was registered keeps checkpoint_id NULL (the plan's tagIds credit it).
import t from 'tap'
import { pino } from 'pino'
import { createIngest } from '../../ingest/index.ts'
import { openEmbeddedStore } from '../helpers/store.ts'
import { checkin, HASH, msg, NOW, uid } from './fixtures.ts'

t.test('an added tag resolves to its checkpoint; a removed one is unknown after lookupTtlMs', async (t) => {
  const store = await openEmbeddedStore(t)
  let clock = NOW
  const ingest = createIngest({ store, log: pino({ level: 'silent' }), now: () => clock, options: { lookupTtlMs: 2_000, unknownTtlMs: 1_000 } })
  t.teardown(() => ingest.close())

  const grid = uid('G')
  await store.grids.create({ id: grid, level: 'district', name: 'g' })
  const dev = uid('dev')
  await store.devices.create({ id: dev, kind: 'patrol', gridId: grid, secretHash: HASH })
  const [oldTag, newTag] = [uid('OLD'), uid('NEW')]
  const cp = await store.checkpoints.create({ id: uid('cp'), gridId: grid, tagId: oldTag, name: 'gate' })

  const send = async (seq: number, tag: string) => t.same((await ingest.ingest(msg(dev, checkin(seq, tag)))).outcomes, ['new'])
  await send(1, oldTag)
  await send(2, newTag) // before it is registered: an unknown tag
  await store.checkpoints.addTag(cp.id, newTag)
  clock += 1_001 // past unknownTtlMs: the negative entry expires
  await send(3, newTag)
  await send(4, oldTag) // the old tag keeps working
  await store.checkpoints.removeTag(cp.id, oldTag)
  await send(5, oldTag) // within lookupTtlMs of its last lookup: still cached as the checkpoint
  clock += 2_001
  await send(6, oldTag)
  await send(7, newTag)

  const rows = await store.checkIns.list({ from: new Date(NOW - 60_000), to: new Date(NOW + 60_000), deviceId: dev })
  const got = new Map(rows.map((r) => [r.seq, [r.tagId, r.checkpointId, r.unknownTag]]))
  t.same(got.get(1), [oldTag, cp.id, false])
  t.same(got.get(2), [newTag, null, true], 'stored before the tag was registered: stays unresolved')
  t.same(got.get(3), [newTag, cp.id, false], 'the added tag resolves to the checkpoint')
  t.same(got.get(4), [oldTag, cp.id, false], 'the first tag still resolves')
  t.same(got.get(5), [oldTag, cp.id, false], 'removed, within the lookup TTL: the cached checkpoint')
  t.same(got.get(6), [oldTag, null, true], 'removed, after the lookup TTL: an unknown tag again')
  t.same(got.get(7), [newTag, cp.id, false])
})
