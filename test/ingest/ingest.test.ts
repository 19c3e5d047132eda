import { randomBytes } from 'node:crypto'
import t from 'tap'
import { encodeUplink, uplinkTopic, type Uplink } from '../../firmware-protocol/index.ts'
import { STAGES, AFTER_PIPELINE } from '../../ingest/index.ts'
import type { Store } from '../../src/store/types.ts'
import { openEmbeddedStore, openServerStore } from '../helpers/store.ts'
import { connectDevice, publish, startStack, up, type Stack } from './helpers.ts'

const uid = (p: string) => `${p}-${randomBytes(3).toString('hex')}`
const NOW = Date.now()
const checkin = (seq: number, tagId: string, deviceTimeMs = NOW - 1000): Uplink => ({ kind: 'checkin', seq, deviceTimeMs, checkin: { tagId, method: 'nfc' } })

t.test('the pipeline order is decode → validate → identify → dedup → write → ack', async (t) => {
  t.same([...STAGES.map((s) => s.name), ...AFTER_PIPELINE], ['decode', 'validate', 'identify', 'dedup', 'write', 'ack'])
})

const drivers: Array<[string, (t: Parameters<typeof openEmbeddedStore>[0]) => Promise<Store | undefined>]> = [
  ['embedded', (t) => openEmbeddedStore(t)],
  ['server', (t) => openServerStore(t)],
]

for (const [name, open] of drivers) {
  t.test(`${name}: device → broker → ingest → store`, async (t) => {
    const store = await open(t)
    if (!store) {
      t.pass('DATABASE_URL is not set: server driver not tested')
      return
    }
    const stack: Stack = await startStack(t, store)
    const grid = uid('G')
    await store.grids.create({ id: grid, level: 'district', name: 'g' })
    const tag = uid('TAG')
    const cp = await store.checkpoints.create({ id: uid('cp'), gridId: grid, tagId: tag, name: 'gate' })

    t.test('check-ins: stored once with both clocks; unknown tags flagged; redelivery and re-upload deduplicated', async (t) => {
      const id = uid('dev')
      const dev = await connectDevice(t, stack.url, id, await stack.device(id, grid))
      await up(dev, id, 'checkin', checkin(1, tag))
      await up(dev, id, 'checkin', checkin(2, 'NOT-REGISTERED'))
      await up(dev, id, 'checkin', checkin(1, tag)) // device retry
      const batch: Uplink = { kind: 'batch', seq: 0, deviceTimeMs: NOW, batch: { items: [checkin(2, 'NOT-REGISTERED'), checkin(3, tag, NOW - 5000), checkin(4, tag, NOW - 4000)] } }
      await up(dev, id, 'batch', batch)
      await up(dev, id, 'batch', batch) // re-upload
      const rows = await store.checkIns.list({ from: new Date(NOW - 60_000), to: new Date(NOW + 60_000), deviceId: id })
      t.equal(rows.length, 4, 'four rows, whatever was re-sent')
      t.same(rows.map((r) => r.seq).sort(), [1, 2, 3, 4])
      const one = rows.find((r) => r.seq === 1)
      t.match(one, { checkpointId: cp.id, gridId: grid, unknownTag: false, clockFuture: false })
      t.ok(one && one.receivedAt.getTime() >= one.deviceTime.getTime(), 'server receive time kept beside device time')
      t.match(rows.find((r) => r.seq === 2), { checkpointId: null, unknownTag: true })
      const hits = (await stack.ingest.metrics.dedupHits.get()).values[0]?.value ?? 0
      t.ok(hits >= 4, `dedup hits counted (${hits})`)
    })

    t.test('garbage payloads are acked and kept byte for byte in rejects', async (t) => {
      const id = uid('dev')
      const dev = await connectDevice(t, stack.url, id, await stack.device(id, grid))
      const garbage = [Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]), Buffer.from('not protobuf at all \u0000\u00ff'), randomBytes(300)]
      for (const g of garbage) await publish(dev, uplinkTopic(id, 'checkin'), g)
      // a valid check-in on the wrong kind's topic, and one claiming another device
      const mismatch = encodeUplink(checkin(9, tag))
      await publish(dev, uplinkTopic(id, 'alarm'), mismatch)
      const impostor = encodeUplink({ ...checkin(10, tag), deviceId: 'someone-else' })
      await publish(dev, uplinkTopic(id, 'checkin'), impostor)
      await up(dev, id, 'checkin', checkin(11, tag)) // the connection survived
      const rejects = await store.rejects.list({ deviceId: id })
      t.equal(rejects.length, 5)
      const sent = [...garbage, Buffer.from(mismatch), Buffer.from(impostor)]
      sent.forEach((g, i) => t.equal(Buffer.from(rejects[i]?.payload ?? []).toString('hex'), g.toString('hex'), `reject ${i} byte for byte`))
      t.match(rejects.map((r) => r.code), ['GP_PROTO_DECODE', /GP_PROTO/, /GP_PROTO/, 'GP_PROTO_TOPIC_MISMATCH', 'GP_PROTO_IDENTITY'])
      t.equal(await store.checkIns.count({ deviceId: id }), 1)
    })

    t.test('a re-used seq with another device time is a conflict, stored as a reject', async (t) => {
      const id = uid('dev')
      const dev = await connectDevice(t, stack.url, id, await stack.device(id, grid))
      await up(dev, id, 'checkin', checkin(1, tag, NOW - 1000))
      const again = encodeUplink(checkin(1, tag, NOW - 999))
      await publish(dev, uplinkTopic(id, 'checkin'), again)
      t.equal(await store.checkIns.count({ deviceId: id }), 1)
      t.match(await store.rejects.list({ deviceId: id }), [{ code: 'GP_INGEST_SEQ_CONFLICT' }])
    })

    t.test('clock flags, telemetry, status, alarm, presence, time-sync offset', async (t) => {
      const id = uid('dev')
      const dev = await connectDevice(t, stack.url, id, await stack.device(id, grid))
      await up(dev, id, 'checkin', checkin(1, tag, NOW + 3_600_000)) // an hour ahead
      await up(dev, id, 'checkin', checkin(2, tag, Date.UTC(2001, 0, 1))) // a reset clock
      await up(dev, id, 'telemetry', { kind: 'telemetry', seq: 3, deviceTimeMs: NOW, telemetry: { readings: [{ metric: 'water_level', value: 1.5, unit: 'm' }] } })
      await up(dev, id, 'status', { kind: 'status', seq: 4, deviceTimeMs: NOW, status: { batteryPct: 42 } })
      await up(dev, id, 'alarm', { kind: 'alarm', seq: 5, deviceTimeMs: NOW, alarm: { kind: 'sos' } })
      const t0 = Date.now()
      await store.commands.enqueue({ commandId: uid('sync'), deviceId: id, kind: 'time_sync', body: { kind: 'time_sync', timeSync: { serverTimeMs: t0 } }, issuedAtMs: t0, expiresAtMs: null })
      const [cmd] = await store.commands.pending(id, t0)
      // the device's clock runs 10 s ahead
      await up(dev, id, 'ack', { kind: 'ack', seq: 6, deviceTimeMs: Date.now() + 10_000, ack: { commandId: cmd?.commandId ?? '', status: 'ok', receivedDeviceTimeMs: t0 + 10_000 } })
      const rows = await store.checkIns.list({ from: new Date(0), to: new Date(NOW * 2), deviceId: id })
      t.match(rows, [{ seq: 2, clockAncient: true }, { seq: 1, clockFuture: true }])
      t.equal((await store.telemetry.list({ deviceId: id, from: new Date(NOW - 1), to: new Date(NOW + 1) }))[0]?.value, 1.5)
      t.equal((await store.alarms.list({ from: new Date(NOW - 1), to: new Date(NOW + 1), deviceId: id }))[0]?.kind, 'sos')
      t.equal((await store.devicesState.get(id))?.batteryPct, 42)
      const est = await store.clock.latest(id)
      t.ok(est && Math.abs(est.offsetMs - 10_000) < 1000, `offset ≈ 10 s (${est?.offsetMs})`)
      t.equal((await store.commands.get(cmd?.commandId ?? ''))?.status, 'acked')
      await new Promise<void>((r) => dev.end(false, {}, () => r()))
      for (let i = 0; i < 50 && (await store.devicesState.get(id))?.online !== false; i++) await new Promise((r) => setTimeout(r, 20))
      t.equal((await store.devicesState.get(id))?.online, false, 'presence stored as device status')
    })
  })
}
