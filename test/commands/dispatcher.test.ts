// Downlink commands through the real broker and a real store: delivery waits for
// the device's command subscription (a clean-session device subscribes after its
// CONNACK — a command published before that would be dropped yet marked sent).
import { Registry } from 'prom-client'
import t from 'tap'
import type { Command } from '../../firmware-protocol/index.ts'
import { decodeCommand, commandTopic } from '../../firmware-protocol/index.ts'
import { createCommandService, type CommandServiceOptions } from '../../src/commands/dispatcher.ts'
import { connectDevice, delay, nextMessage, startBroker, subscribe, type Tap } from '../broker/helpers.ts'
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

/** Acknowledges a time sync as a device whose clock is `offsetMs` ahead (zero delay), through the store as the ingest writes it. */
async function ackSync(store: Awaited<ReturnType<typeof openEmbeddedStore>>, deviceId: string, c: Command, seq: number, offsetMs: number, at: number, status: 'ok' | 'expired' = 'ok') {
  if (c.kind !== 'time_sync') throw new Error(`expected a time sync, got ${c.kind}`)
  const t0 = c.timeSync.serverTimeMs
  await store.uplinks.write({
    records: [{ kind: 'ack', deviceId, seq, deviceTimeMs: at + offsetMs, receivedAtMs: at, clockFuture: false, clockAncient: false, commandId: c.commandId, status, receivedDeviceTimeMs: t0 + offsetMs }],
  })
}

/** The command service on a virtual clock (`time.at`, polled every 50 ms), the real broker, an embedded store. */
async function onVirtualClock(t: Tap, opts: Partial<CommandServiceOptions> = {}) {
  const store = await openEmbeddedStore(t)
  const tb = await startBroker(t)
  const time = { at: Date.parse('2024-06-03T08:00:00Z') }
  const commands = createCommandService({ store, broker: tb.broker, log: silentLog, pollMs: 50, now: () => time.at, ...opts })
  t.teardown(() => commands.close())
  /** A clean-session device, connected, its command subscription in place. */
  const online = async (deviceId: string) => {
    const dev = await connectDevice(t, tb, deviceId, await tb.device(deviceId), { clean: true })
    await subscribe(dev, commandTopic(deviceId))
    return dev
  }
  return { store, time, online }
}

t.test('a sync that measures a large offset is followed by one more (once); a small one is not', async (t) => {
  const { store, time, online } = await onVirtualClock(t)
  const dev = await online('cmd-dev-3')
  const first = cmd((await nextMessage(dev)).payload)
  t.equal(first.kind, 'time_sync', 'first connect: a time sync')
  // the device's clock is 40 min ahead; it steps it right after acknowledging
  time.at += 1000
  await ackSync(store, 'cmd-dev-3', first, 10, 40 * 60_000, time.at)
  const second = cmd((await nextMessage(dev)).payload)
  t.equal(second.kind, 'time_sync', 'a follow-up sync after the 40 min offset')
  t.not(second.commandId, first.commandId)
  time.at += 1000
  await ackSync(store, 'cmd-dev-3', second, 11, 0, time.at)
  await t.rejects(nextMessage(dev, 500), /no message/, 'no third sync: the follow-up is not followed up')
  t.equal((await store.clock.latest('cmd-dev-3'))?.offsetMs, 0, 'the corrected clock is the latest estimate')

  // another device, 1.5 s off: no follow-up
  const dev4 = await online('cmd-dev-4')
  const sync4 = cmd((await nextMessage(dev4)).payload)
  await ackSync(store, 'cmd-dev-4', sync4, 5, 1500, time.at)
  await t.rejects(nextMessage(dev4, 500), /no message/, 'a small offset: no follow-up')
})

t.test('a clock ahead by more than a sync\'s life: the next sync expires that much later, the device applies it and is followed up', async (t) => {
  const registry = new Registry()
  const { store, time, online } = await onVirtualClock(t, { registry })
  const dev = await online('cmd-dev-6')
  // The device (PROTOCOL.md §3.3, §6): judges expiry by its clock, 5 min ahead; applies a sync by stepping its clock.
  let ahead = 5 * 60_000
  let seq = 0
  const answer = async (c: Command) => {
    time.at += 800
    const expired = c.expiresMs !== 0 && time.at + ahead > c.expiresMs
    await ackSync(store, 'cmd-dev-6', c, ++seq, ahead, time.at, expired ? 'expired' : 'ok')
    if (!expired) ahead = 0
    return expired
  }
  const first = cmd((await nextMessage(dev)).payload)
  t.equal(first.expiresMs - first.issuedMs, 60_000, 'a sync lives 60 s')
  t.ok(await answer(first), 'the device finds it expired by its clock')
  t.equal((await store.clock.latest('cmd-dev-6'))?.offsetMs, 5 * 60_000, 'measured from the expired ack')
  const second = cmd((await nextMessage(dev)).payload)
  t.equal(second.kind, 'time_sync')
  t.equal(second.expiresMs - second.issuedMs, 60_000 + 5 * 60_000, 'the next one expires as much later as the clock is ahead')
  t.notOk(await answer(second), 'applied: the device steps its clock')
  const third = cmd((await nextMessage(dev)).payload)
  t.equal(third.expiresMs - third.issuedMs, 60_000, 'the follow-up (the last sync measured 5 min): a normal life')
  t.notOk(await answer(third))
  t.equal((await store.clock.latest('cmd-dev-6'))?.offsetMs, 0, 'the corrected clock is the latest estimate')
  await t.rejects(nextMessage(dev, 500), /no message/, 'nothing more')
  // On /metrics: the syncs sent, by reason, and the offsets they measured.
  const text = await registry.metrics()
  t.match(text, /gridpatrol_time_syncs_total\{reason="connect"\} 1\n/)
  t.match(text, /gridpatrol_time_syncs_total\{reason="expired_ahead"\} 1\n/)
  t.match(text, /gridpatrol_time_syncs_total\{reason="follow_up"\} 1\n/)
  t.match(text, /gridpatrol_time_sync_offset_seconds_bucket\{le="2"\} 1\n/, 'one measured ≈ 0')
  t.match(text, /gridpatrol_time_sync_offset_seconds_count 3\n/)

  // A device that finds even the moved expiry passed (its clock jumped further) is not sent syncs in a loop.
  const dev7 = await online('cmd-dev-7')
  const a = cmd((await nextMessage(dev7)).payload)
  await ackSync(store, 'cmd-dev-7', a, 1, 2 * 60_000, time.at, 'expired')
  const b = cmd((await nextMessage(dev7)).payload)
  t.equal(b.expiresMs - b.issuedMs, 60_000 + 2 * 60_000)
  await ackSync(store, 'cmd-dev-7', b, 2, 9 * 60_000, time.at, 'expired')
  await t.rejects(nextMessage(dev7, 500), /no message/, 'no third: the periodic sync tries again')
})

t.test('a device that stays online gets a time sync every timeSyncEveryMs', async (t) => {
  const { store, time, online } = await onVirtualClock(t, { timeSyncEveryMs: 3_600_000 })
  const dev = await online('cmd-dev-5')
  const first = cmd((await nextMessage(dev)).payload)
  await ackSync(store, 'cmd-dev-5', first, 1, 100, time.at)
  time.at += 30 * 60_000
  await t.rejects(nextMessage(dev, 400), /no message/, 'half an hour later: none due')
  time.at += 31 * 60_000
  const again = cmd((await nextMessage(dev)).payload)
  t.equal(again.kind, 'time_sync', 'an hour after the last: a new sync while still online')
  t.equal(again.kind === 'time_sync' && again.timeSync.serverTimeMs, time.at, 't0 taken at sending time')
})
