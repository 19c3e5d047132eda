import t from 'tap'
import { decodeUplink, encodeCommand, MAX_BATCH_ITEMS, type Uplink } from '../../firmware-protocol/index.ts'
import { VirtualClock } from '../../simulators/clock.ts'
import { Fleet } from '../../simulators/fleet.ts'
import { MemoryNetwork } from '../../simulators/memory-network.ts'
import { createRng } from '../../simulators/prng.ts'

const T0 = Date.UTC(2025, 2, 10, 0, 0)

function build(seed = 1) {
  const clock = new VirtualClock(T0)
  const net = new MemoryNetwork(clock, { latencyMs: 20 })
  const fleet = new Fleet({ clock, seed, transportFor: (id) => net.transport(id) })
  const uplinks = () =>
    net.messages
      .filter((m) => m.topic.includes('/up/'))
      .map((m) => {
        const r = decodeUplink(m.payload, { topic: m.topic })
        if (!r.ok) throw r.error
        return r.value
      })
  const flat = () => uplinks().flatMap((u): Uplink[] => (u.kind === 'batch' ? u.batch.items : [u]))
  return { clock, net, fleet, uplinks, flat }
}

const cp = { id: 'cp1', tagId: '04AABB', method: 'nfc' as const, lat: 31.23, lon: 121.47 }

t.test('virtual clock runs timers in time order, FIFO on ties, and cancels', async (t) => {
  const c = new VirtualClock(0)
  const seen: string[] = []
  c.setTimeout(() => seen.push('b'), 10)
  c.setTimeout(() => seen.push('a'), 5)
  c.setTimeout(() => seen.push('b2'), 10)
  const x = c.setTimeout(() => seen.push('x'), 7)
  c.clearTimeout(x)
  c.runUntil(100)
  t.same(seen, ['a', 'b', 'b2'])
  t.equal(c.now(), 100)
})

t.test('seeded PRNG is reproducible and forks independently', async (t) => {
  const a = createRng(42)
  const b = createRng(42)
  t.same([a.next(), a.next()], [b.next(), b.next()])
  t.not(createRng(42).fork('x').next(), createRng(42).fork('y').next())
})

t.test('device clock: drift, offset and reset to an old epoch', async (t) => {
  const { clock, fleet } = build()
  const d = fleet.addPatrol({ id: 'p1', clockDriftPpm: 100, clockOffsetMs: 5000 })
  t.equal(d.deviceClock.now(), T0 + 5000)
  clock.advance(3_600_000)
  t.equal(d.deviceClock.now(), T0 + 3_600_000 + 5000 + 360) // 100 ppm of an hour = 360 ms
  d.deviceClock.set(Date.UTC(2000, 0, 1))
  t.equal(d.deviceClock.now(), Date.UTC(2000, 0, 1))
})

t.test('seq starts at 1, ascends, survives a reboot; delivered only after PUBACK', async (t) => {
  const { clock, fleet, flat } = build()
  const d = fleet.addPatrol({ id: 'p1' })
  d.start()
  clock.advance(1000)
  d.checkIn(cp)
  t.equal(d.backlog, 1, 'in flight until the PUBACK')
  clock.advance(1000)
  t.equal(d.backlog, 0)
  d.reboot(5000)
  clock.advance(10_000)
  d.checkIn(cp)
  clock.advance(1000)
  const seqs = flat().map((u) => u.seq)
  t.same(seqs, [...seqs].sort((a, b) => a - b), 'ascending')
  t.equal(seqs[0], 1)
  t.equal(new Set(seqs).size, seqs.length, 'never reused')
  t.equal(d.state.bootCount, 2)
  t.equal(flat().filter((u) => u.kind === 'status').length, 2, 'a status after each boot')
})

t.test('offline backlog uploads as batches of ≤ 500 with seq 0; alarms go live, not in a batch', async (t) => {
  const { clock, fleet, uplinks } = build()
  const d = fleet.addPatrol({ id: 'p1', heartbeatIntervalS: 86_400 })
  d.start()
  clock.advance(1000)
  d.setNetwork(false)
  for (let i = 0; i < 1100; i++) d.checkIn(cp)
  d.alarm('sos')
  d.setNetwork(true)
  clock.advance(5000)
  const batches = uplinks().filter((u) => u.kind === 'batch')
  t.same(
    batches.map((b) => (b.kind === 'batch' ? b.batch.items.length : 0)),
    [MAX_BATCH_ITEMS, MAX_BATCH_ITEMS, 100],
  )
  for (const b of batches) {
    t.equal(b.seq, 0)
    if (b.kind !== 'batch') continue
    const s = b.batch.items.map((i) => i.seq)
    t.same(s, [...s].sort((x, y) => x - y))
    t.notOk(b.batch.items.some((i) => i.kind === 'alarm'), 'no alarm in a batch')
  }
  t.equal(uplinks().filter((u) => u.kind === 'alarm').length, 1, 'alarm sent live')
  t.equal(d.backlog, 0)
})

t.test('a lost PUBACK makes the device reconnect and re-send; duplicates carry the same seq', async (t) => {
  const { clock, net, fleet, flat } = build()
  const d = fleet.addPatrol({ id: 'p1', heartbeatIntervalS: 86_400 })
  d.start()
  clock.advance(1000)
  net.loseAcks('p1', 1)
  d.checkIn(cp)
  clock.advance(5000)
  t.equal(d.backlog, 1, 'still unacknowledged')
  clock.advance(60_000)
  t.equal(d.backlog, 0, 'delivered after the re-send')
  d.duplicateSends(1)
  d.checkIn(cp)
  clock.advance(1000)
  const checkins = flat().filter((u) => u.kind === 'checkin')
  t.equal(checkins.length, 4, 'original + re-send + duplicate pair')
  t.equal(new Set(checkins.map((c) => c.seq)).size, 2, 'two distinct seqs')
})

t.test('commands: ping echoes the nonce, expired is acked expired, time sync fixes a reset clock after acking', async (t) => {
  const { clock, net, fleet, flat } = build()
  const d = fleet.addPatrol({ id: 'p1', heartbeatIntervalS: 86_400 })
  d.start()
  clock.advance(1000)
  d.deviceClock.set(Date.UTC(2000, 0, 1))
  const now = clock.now()
  net.sendCommand('p1', encodeCommand({ commandId: 'c1', issuedMs: now, expiresMs: 0, kind: 'ping', ping: { nonceHex: 'abcd' } }))
  net.sendCommand('p1', encodeCommand({ commandId: 'c2', issuedMs: now, expiresMs: 1, kind: 'config', config: { heartbeatIntervalS: 60 } }))
  net.sendCommand('p1', encodeCommand({ commandId: 'c3', issuedMs: now, expiresMs: 0, kind: 'time_sync', timeSync: { serverTimeMs: now } }))
  clock.advance(1000)
  const acks = flat().flatMap((u) => (u.kind === 'ack' ? [u] : []))
  t.same(
    acks.map((a) => [a.ack.commandId, a.ack.status]),
    [
      ['c1', 'ok'],
      ['c2', 'expired'], // expiry is judged by the device clock (2000-01-01 > expiresMs)
      ['c3', 'ok'],
    ],
  )
  t.equal(acks[0]!.ack.nonceHex, 'abcd')
  t.equal(acks[2]!.ack.receivedDeviceTimeMs! < Date.UTC(2001, 0, 1), true, 't1 on the old clock')
  t.ok(Math.abs(d.deviceClock.now() - clock.now()) < 1000, 'clock set from the time sync')
})
