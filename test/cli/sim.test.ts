// `gridpatrol sim patrol --tags … --badge …` against the main job (in this process, embedded
// store, ephemeral ports): the simulated device reads the tags registered with `checkpoint add
// --tag`, so its check-ins land on those checkpoints (README's first session). Bad numbers and
// tag lists are refused naming the flag.
import t from 'tap'
import { generateSecret, hashSecret } from '../../broker/index.ts'
import { startLocal } from '../helpers/app.ts'
import { runCli } from '../helpers/cli.ts'

const gp = (...args: string[]) => runCli(args, { env: { GRIDPATROL_LOG_LEVEL: 'silent' } })

t.test('sim patrol reads the registered tags in turn, with the badge', async (t) => {
  const { running, cleanup } = await startLocal('embedded', 'gp-cli-sim', {})
  t.teardown(cleanup)
  const { store, ports } = running
  await store.grids.create({ id: 'SG', level: 'district', name: 'SG' })
  await store.checkpoints.create({ id: 'SCP1', gridId: 'SG', tagId: '04A2241B5C6380', name: 'one' })
  await store.checkpoints.create({ id: 'SCP2', gridId: 'SG', tagId: '04A2241B5C6381', name: 'two' })
  const secret = generateSecret()
  await store.devices.create({ id: 'sim-tags', kind: 'patrol', gridId: 'SG', secretHash: await hashSecret(secret) })

  const before = Date.now()
  const r = await gp('sim', 'patrol', '--url', `mqtt://127.0.0.1:${ports.mqtt}`, '--device', 'sim-tags', '--secret', secret, '--tags', '04A2241B5C6380,04A2241B5C6381', '--badge', 'B-007', '--interval', '0.4', '--duration', '3')
  t.equal(r.code, 0, r.stderr)
  const stats = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { published: number; acked: number }
  t.ok(stats.acked >= 4, `acked check-ins and heartbeats (${stats.acked})`)
  const rows = await store.checkIns.list({ from: new Date(before - 60_000), to: new Date(Date.now() + 60_000), deviceId: 'sim-tags' })
  t.ok(rows.length >= 3, `check-ins stored (${rows.length})`)
  t.strictSame([...new Set(rows.map((c) => c.checkpointId))].sort(), ['SCP1', 'SCP2'], 'each on its registered checkpoint')
  t.ok(rows.every((c) => c.badgeId === 'B-007'), 'with the badge')
})

t.test('bad numbers and tag lists are refused naming the flag', async (t) => {
  for (const [args, why] of [
    [['sim', 'patrol', '--interval', '0'], /--interval must be a number > 0/],
    [['sim', 'patrol', '--duration', 'soon'], /--duration must be a number > 0/],
    [['sim', 'patrol', '--tags', 'a,,b'], /--tags is a comma-separated list of tag ids/],
    [['sim', 'fleet', '--count', '2.5'], /--count must be a whole number > 0/],
    [['sim', 'sensor', '--metric', 'humidity'], /argument 'humidity' is invalid\. Allowed choices are water_level, tilt, smoke, temperature/],
    [['sim', 'patrol', '--speed', '-1'], /--speed must be a number > 0/],
  ] as const) {
    const r = await gp(...args)
    t.not(r.code, 0, args.join(' '))
    t.match(r.stderr, why)
  }
})
