// `gridpatrol device add|list` on an embedded store: the secret printed once and never listed;
// the list shows each device's latest clock offset (PROTOCOL.md §6), measured by a time sync.
import t from 'tap'
import { embeddedCli } from '../helpers/cli.ts'

t.test('device add, then list with state and the clock offset measured', async (t) => {
  const { gp, store } = await embeddedCli(t, 'gp-cli-device')
  const added = await gp('device', 'add', 'dev-clock', '--vendor', 'acme')
  const secret = /secret (\S+)/.exec(added.stdout)?.[1]
  t.ok(secret, 'the secret is printed once')
  t.match(added.stderr, /Store this secret now/)
  await gp('device', 'add', 'dev-unsynced')

  // A time sync the device acknowledged at once: its clock 90.5 s ahead, 0.5 s each way.
  const s = await store()
  const t0 = Date.parse('2024-06-03T08:00:00Z')
  await s.commands.enqueue({ commandId: 'sync-1', deviceId: 'dev-clock', kind: 'time_sync', body: { commandId: 'sync-1', issuedMs: t0, expiresMs: t0 + 60_000, kind: 'time_sync', timeSync: { serverTimeMs: t0 } }, issuedAtMs: t0, expiresAtMs: t0 + 60_000 })
  await s.uplinks.write({
    records: [{ kind: 'ack', deviceId: 'dev-clock', seq: 1, deviceTimeMs: t0 + 500 + 90_500, receivedAtMs: t0 + 1000, clockFuture: false, clockAncient: false, commandId: 'sync-1', status: 'ok', receivedDeviceTimeMs: t0 + 500 + 90_500 }],
  })

  const listed = await gp('device', 'list', '--json')
  t.notMatch(listed.stdout, secret!, 'the secret is never listed')
  const rows = JSON.parse(listed.stdout) as Array<{ id: string; vendor: string | null; clockOffsetS: number | null; clockMeasured: string | null }>
  t.match(rows, [
    { id: 'dev-clock', vendor: 'acme', clockOffsetS: 90.5, clockMeasured: '2024-06-03T08:00:01.000Z' },
    { id: 'dev-unsynced', clockOffsetS: null, clockMeasured: null },
  ])
  t.match((await gp('device', 'list')).stdout, /^id +kind +vendor +grid +disabled +online +lastSeen +battery +clockOffsetS +clockMeasured\n/)
})
