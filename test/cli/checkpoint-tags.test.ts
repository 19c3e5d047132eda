// `checkpoint tag add|remove`: a replacement or second tag for a checkpoint, and
// taking one off; `checkpoint list` shows every tag. Refusals name what was wrong.
import t from 'tap'
import { embeddedCli } from '../helpers/cli.ts'

t.test('checkpoint tag add/remove and list, refusals named', async (t) => {
  const { gp, fails, store } = await embeddedCli(t, 'gp-cli-cptags')
  await gp('grid', 'add', 'TD1', '--level', 'district')
  await gp('checkpoint', 'add', 'GATE', '--grid', 'TD1', '--tag', '04OLD')
  await gp('checkpoint', 'add', 'WELL', '--grid', 'TD1', '--tag', '04WELL')
  await gp('checkpoint', 'add', 'STOP', '--grid', 'TD1', '--lat', '31.2', '--lon', '121.4')

  let r = await gp('checkpoint', 'tag', 'add', 'GATE', '--tag', '04NEW')
  t.match(r.stdout, /tag 04NEW added to checkpoint GATE; its tags: 04OLD, 04NEW/)
  r = await gp('checkpoint', 'tag', 'add', 'GATE', '--tag', '04NEW')
  t.match(r.stdout, /checkpoint GATE already has tag 04NEW/, 'adding it again is harmless')
  t.same((await (await store()).checkpoints.byTags(['04OLD', '04NEW'])).get('04NEW')?.checkpointId, 'GATE')

  r = await gp('checkpoint', 'list', '--grid', 'TD1')
  t.match(r.stdout, /^id\s+tags\s+name/m)
  t.match(r.stdout, /^GATE\s+04OLD,04NEW\s+GATE/m, 'every tag of a checkpoint')
  t.match(r.stdout, /^STOP\s+-\s+STOP/m, 'a GPS-only checkpoint: none')
  const json = JSON.parse((await gp('checkpoint', 'list', '--grid', 'TD1', '--json')).stdout) as Array<{ id: string; tag: string | null; tags: string[] }>
  t.same(json.map((c) => [c.id, c.tag, c.tags]), [['GATE', '04OLD', ['04OLD', '04NEW']], ['STOP', null, []], ['WELL', '04WELL', ['04WELL']]])

  // refusals: each names what was wrong
  const fail = async (...args: string[]) => (await fails(...args)) ?? { code: 0, stderr: '' }
  let f = await fail('checkpoint', 'tag', 'add', 'NOPE', '--tag', '04X')
  t.equal(f.code, 1)
  t.match(f.stderr, /checkpoint "NOPE" does not exist/)
  f = await fail('checkpoint', 'tag', 'add', 'WELL', '--tag', '04NEW')
  t.not(f.code, 0)
  t.match(f.stderr, /tag "04NEW" already belongs to checkpoint "GATE"; not added to checkpoint "WELL"/)
  f = await fail('checkpoint', 'tag', 'add', 'WELL', '--tag', '')
  t.not(f.code, 0)
  t.match(f.stderr, /--tag.*the tag id must not be empty/)
  f = await fail('checkpoint', 'add', 'EMPTY', '--grid', 'TD1', '--tag', ' ')
  t.match(f.stderr, /--tag.*the tag id must not be empty/, 'checkpoint add refuses an empty tag too')
  f = await fail('checkpoint', 'tag', 'add', 'WELL')
  t.match(f.stderr, /required option '--tag <tagId>' not specified/)
  f = await fail('checkpoint', 'tag', 'remove', 'WELL', '--tag', '04OLD')
  t.match(f.stderr, /tag "04OLD" belongs to checkpoint "GATE", not to checkpoint "WELL"/)
  f = await fail('checkpoint', 'tag', 'remove', 'WELL', '--tag', '04WELL')
  t.match(f.stderr, /tag "04WELL" is the last tag of checkpoint "WELL", which has no coordinates/)
  f = await fail('checkpoint', 'tag', 'remove', 'NOPE', '--tag', '04WELL')
  t.match(f.stderr, /checkpoint "NOPE" does not exist/)

  // the damaged tag comes off; the replacement stays
  r = await gp('checkpoint', 'tag', 'remove', 'GATE', '--tag', '04OLD')
  t.match(r.stdout, /tag 04OLD removed from checkpoint GATE; its tags: 04NEW/)
  f = await fail('checkpoint', 'tag', 'remove', 'GATE', '--tag', '04OLD')
  t.match(f.stderr, /tag "04OLD" is not registered/)
  // a geofence checkpoint may carry tags and lose them all
  await gp('checkpoint', 'tag', 'add', 'STOP', '--tag', '04OLD')
  r = await gp('checkpoint', 'tag', 'remove', 'STOP', '--tag', '04OLD')
  t.match(r.stdout, /its tags: \(none: a GPS geofence\)/)
})
