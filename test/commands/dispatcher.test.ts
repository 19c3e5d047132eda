// Downlink commands through the real broker and a real store: delivery waits for
// the device's command subscription (a clean-session device subscribes after its
// CONNACK — a command published before that would be dropped yet marked sent).
import t from 'tap'
import type { Command } from '../../firmware-protocol/index.ts'
import { decodeCommand, commandTopic } from '../../firmware-protocol/index.ts'
import { createCommandService } from '../../src/commands/dispatcher.ts'
import { connectDevice, delay, nextMessage, startBroker, subscribe } from '../broker/helpers.ts'
import { openEmbeddedStore, silentLog } from '../helpers/store.ts'

function cmd(payload: Buffer): Command {
  const r = decodeCommand(new Uint8Array(payload))
  if (!r.ok) throw new Error(`undecodable command: ${r.error.message}`)
  return r.value
}

t.test('commands wait for the command subscription; time sync and queued commands arrive after a late SUBSCRIBE', async (t) => {
  const store = await openEmbeddedStore(t)
  const tb = await startBroker(t)
  const commands = createCommandService({ store, broker: tb.broker, log: silentLog, pollMs: 60_000 })
  t.teardown(() => commands.close())
  const ready: string[] = []
  tb.broker.on('downlink-ready', (ev) => ready.push(ev.deviceId))

  const secret = await tb.device('cmd-dev-1')
  // Queued while the device is offline.
  const queued = await commands.send('cmd-dev-1', { kind: 'ping', ping: { nonceHex: 'ab12' } })
  const dev = await connectDevice(t, tb, 'cmd-dev-1', secret, { clean: true })
  await delay(300) // the device does other work before subscribing
  t.same(ready, [], 'connected but not subscribed: not ready')
  await subscribe(dev, commandTopic('cmd-dev-1'))
  const first = cmd((await nextMessage(dev)).payload)
  const second = cmd((await nextMessage(dev)).payload)
  const kinds = [first.kind, second.kind]
  t.same(kinds.sort(), ['ping', 'time_sync'], 'both the time sync and the queued command arrive')
  t.ok([first, second].some((c) => c.commandId === queued.commandId), 'the queued command is the one sent')
  t.same(ready, ['cmd-dev-1'])

  // Online and subscribed: a new command goes out at once.
  await commands.send('cmd-dev-1', { kind: 'ping', ping: { nonceHex: 'ab12' } })
  t.equal(cmd((await nextMessage(dev)).payload).kind, 'ping', 'sent at once while subscribed')
})

t.test('a takeover by the same device keeps it deliverable (the old session\'s offline event does not remove it)', async (t) => {
  const store = await openEmbeddedStore(t)
  const tb = await startBroker(t)
  const commands = createCommandService({ store, broker: tb.broker, log: silentLog, pollMs: 60_000, timeSyncEveryMs: Number.MAX_SAFE_INTEGER })
  t.teardown(() => commands.close())
  const secret = await tb.device('cmd-dev-2')
  const a = await connectDevice(t, tb, 'cmd-dev-2', secret, { clean: true })
  await subscribe(a, commandTopic('cmd-dev-2'))
  t.equal(cmd((await nextMessage(a)).payload).kind, 'time_sync', 'first connect: no estimate yet, time sync sent')
  const b = await connectDevice(t, tb, 'cmd-dev-2', secret, { clean: true })
  await subscribe(b, commandTopic('cmd-dev-2'))
  await delay(200) // the old client's offline event is handled
  await commands.send('cmd-dev-2', { kind: 'ping', ping: { nonceHex: 'ab12' } })
  const got = cmd((await nextMessage(b)).payload)
  t.equal(got.kind, 'ping', 'the new connection receives the command at once')
})
