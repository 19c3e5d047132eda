// The store contract, written once and run against every driver (MQTT.js
// abstract_store pattern). Subtests share one store and use unique ids.
import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import type { CheckInRecord, Store, UplinkRecord } from '../../src/store/types.ts'

const HASH = 'scrypt$16384$8$1$c2FsdA==$aGFzaA=='
const T0 = Date.UTC(2026, 0, 5, 0, 0, 0) // a Monday, 08:00 Asia/Shanghai
const HOUR = 3_600_000

const uid = (p: string) => `${p}-${randomBytes(4).toString('hex')}`

function checkIn(deviceId: string, seq: number, deviceTimeMs: number, extra: Partial<CheckInRecord> = {}): CheckInRecord {
  return {
    kind: 'checkin',
    deviceId,
    seq,
    deviceTimeMs,
    receivedAtMs: deviceTimeMs + 1_000,
    clockFuture: false,
    clockAncient: false,
    tagId: 'TAG',
    method: 'nfc',
    checkpointId: null,
    gridId: null,
    ...extra,
  }
}

export function storeContract(t: Test, getStore: () => Store): void {
  t.test('migrate is idempotent and reports what it did', async (t) => {
    const store = getStore()
    const again = await store.migrate()
    t.same(again.applied, [], 'nothing left to apply')
    t.ok(again.alreadyApplied >= 3, 'earlier migrations recorded')
    await store.ping()
  })

  t.test('grids: three levels, parent, standard code, default time zone', async (t) => {
    const store = getStore()
    const d = uid('D')
    const s = uid('S')
    const c = uid('C')
    const code = String(Math.floor(Math.random() * 1e15)).padStart(15, '0')
    await store.grids.create({ id: d, level: 'district', name: 'Gulou' })
    await store.grids.create({ id: s, level: 'street', parentId: d, name: 'Street 1' })
    const poly = { type: 'Polygon', coordinates: [[[118.7, 32.0], [118.8, 32.0], [118.8, 32.1], [118.7, 32.0]]] }
    const g = await store.grids.create({ id: c, level: 'community', parentId: s, name: 'Grid 1', standardCode: code, boundary: poly })
    t.equal(g.timeZone, 'Asia/Shanghai')
    t.equal(g.standardCode, code)
    t.same((await store.grids.get(c))?.boundary, poly)
    t.same((await store.grids.list({ parentId: s })).map((x) => x.id), [c])
    await t.rejects(store.grids.create({ id: uid('X'), level: 'community', parentId: s, name: 'bad', standardCode: '12345' }), 'code must be 15 digits')
    await t.rejects(store.grids.create({ id: uid('X'), level: 'street', name: 'orphan' }), 'a street needs a parent')
  })

  t.test('checkpoint tags: several per checkpoint, one checkpoint per tag, add and remove', async (t) => {
    const store = getStore()
    const g = uid('D')
    await store.grids.create({ id: g, level: 'district', name: 'd' })
    const [t1, t2, t3] = [uid('T1'), uid('T2'), uid('T3')]
    const a = await store.checkpoints.create({ id: uid('cpA'), gridId: g, tagId: t1, name: 'post A' })
    t.same(a.tagIds, [t1], 'created with its one tag')
    const b = await store.checkpoints.create({ id: uid('cpB'), gridId: g, tagId: null, name: 'fence B', lat: 32, lon: 118 })
    t.same(b.tagIds, [], 'a GPS-only checkpoint has none')
    const c = await store.checkpoints.create({ id: uid('cpC'), gridId: g, tagId: t3, name: 'post C' })

    // a replacement tag: both resolve; the first stays checkpoints.tag_id
    const added = await store.checkpoints.addTag(a.id, t2)
    t.equal(added.added, true)
    t.same(added.checkpoint.tagIds, [t1, t2])
    t.equal(added.checkpoint.tagId, t1, 'tagId is the oldest tag')
    t.same((await store.checkpoints.addTag(a.id, t2)).added, false, 'adding a tag it has is a no-op')
    const m = await store.checkpoints.byTags([t1, t2, t3])
    t.same(m.get(t1), { checkpointId: a.id, gridId: g })
    t.same(m.get(t2), { checkpointId: a.id, gridId: g })
    t.same(m.get(t3), { checkpointId: c.id, gridId: g })
    t.same((await store.checkpoints.get(a.id))?.tagIds, [t1, t2])
    t.same((await store.checkpoints.listByGrid(g)).map((x) => [x.id, x.tagIds]).sort(), [[a.id, [t1, t2]], [b.id, []], [c.id, [t3]]].sort())

    // a tag belongs to one checkpoint: refused, naming both
    await t.rejects(store.checkpoints.addTag(c.id, t2), { code: 'GP_STORE_INVALID', message: new RegExp(`tag "${t2}" already belongs to checkpoint "${a.id}"; not added to checkpoint "${c.id}"`) })
    await t.rejects(store.checkpoints.create({ id: uid('cp'), gridId: g, tagId: t2, name: 'dup of a second tag' }), { message: new RegExp(`already belongs to checkpoint "${a.id}"`) })
    await t.rejects(store.checkpoints.addTag('no-such-cp', uid('T')), { message: /checkpoint "no-such-cp" does not exist/ })
    await t.rejects(store.checkpoints.addTag(a.id, ' '), { message: /empty tag id/ })

    // remove: the damaged first tag goes, the replacement becomes tagId; the old one is unknown
    const afterRemove = await store.checkpoints.removeTag(a.id, t1)
    t.same(afterRemove.tagIds, [t2])
    t.equal(afterRemove.tagId, t2)
    t.equal((await store.checkpoints.byTags([t1])).has(t1), false, 'a removed tag no longer resolves')
    await t.rejects(store.checkpoints.removeTag(a.id, t2), { message: new RegExp(`"${t2}" is the last tag of checkpoint "${a.id}", which has no coordinates`) })
    await t.rejects(store.checkpoints.removeTag(a.id, t3), { message: new RegExp(`belongs to checkpoint "${c.id}", not to checkpoint "${a.id}"`) })
    await t.rejects(store.checkpoints.removeTag(a.id, t1), { message: new RegExp(`tag "${t1}" is not registered`) })
    await t.rejects(store.checkpoints.removeTag('no-such-cp', t2), { message: /checkpoint "no-such-cp" does not exist/ })
    // the freed tag can go to another checkpoint; a geofence may lose its every tag
    t.same((await store.checkpoints.addTag(b.id, t1)).checkpoint, { ...b, tagId: t1, tagIds: [t1] })
    t.same((await store.checkpoints.removeTag(b.id, t1)).tagIds, [], 'a GPS checkpoint may lose its last tag')
    t.equal((await store.checkpoints.get(b.id))?.tagId, null)
  })

  t.test('checkpoints and devices', async (t) => {
    const store = getStore()
    const g = uid('D')
    await store.grids.create({ id: g, level: 'district', name: 'd' })
    const tag = uid('04A1')
    const cp = await store.checkpoints.create({ id: uid('cp'), gridId: g, tagId: tag, name: 'Gate', lat: 32.05, lon: 118.78, radiusM: 25 })
    t.equal(cp.radiusM, 25)
    await t.rejects(store.checkpoints.create({ id: uid('cp'), gridId: g, tagId: tag, name: 'dup tag' }), 'tag ids are unique')
    const m = await store.checkpoints.byTags([tag, 'nope'])
    t.same(m.get(tag), { checkpointId: cp.id, gridId: g })
    t.equal(m.has('nope'), false)

    const id = uid('dev')
    const dev = await store.devices.create({ id, kind: 'patrol', vendor: 'acme', gridId: g, secretHash: HASH })
    t.equal(dev.disabled, false)
    t.equal(dev.rotatedAt, null)
    t.ok(await store.devices.rotateSecret(id, HASH + 'x', T0))
    t.equal((await store.devices.get(id))?.rotatedAt?.getTime(), T0)
    t.ok(await store.devices.setDisabled(id, true))
    t.equal((await store.devices.get(id))?.disabled, true)
    t.equal(await store.devices.rotateSecret('missing', HASH, T0), false)
    t.same([...(await store.devices.getMany([id, 'missing'])).keys()], [id])
    t.same((await store.devices.list({ gridId: g })).map((x) => x.id), [id])
    await t.rejects(store.devices.create({ id: uid('svc'), kind: 'service', secretHash: 'plain' }), 'only scrypt hashes')
  })

  t.test('write: new, duplicate, conflict — exactly once whatever the redelivery', async (t) => {
    const store = getStore()
    const dev = uid('dev')
    const payload = new Uint8Array([1, 2, 3])
    const first = await store.uplinks.write({ records: [checkIn(dev, 1, T0), checkIn(dev, 2, T0 + 1000)] })
    t.same(first.outcomes, ['new', 'new'])
    const again = await store.uplinks.write({
      records: [
        checkIn(dev, 2, T0 + 1000), // re-send
        checkIn(dev, 3, T0 + 2000),
        checkIn(dev, 3, T0 + 2000), // twice in one batch
        checkIn(dev, 1, T0 + 5000, { source: { topic: `gp/v1/${dev}/up/checkin`, payload } }), // same seq, other time
      ],
    })
    t.same(again.outcomes, ['duplicate', 'new', 'duplicate', 'conflict'])
    t.match(again, { inserted: 1, duplicates: 2, conflicts: 1, rejects: 1 })
    t.equal(await store.checkIns.count({ deviceId: dev }), 3)
    const rej = await store.rejects.list({ deviceId: dev })
    t.equal(rej.length, 1)
    t.equal(rej[0]?.code, 'GP_INGEST_SEQ_CONFLICT')
    t.same([...(rej[0]?.payload ?? [])], [1, 2, 3])
  })

  t.test('pruneSeen forgets old dedup keys; a re-send after it still makes no second row', async (t) => {
    const store = getStore()
    const dev = uid('dev')
    // Receipt times in 2001–2002, before any other test's: pruning them touches nothing else.
    const OLD = Date.UTC(2001, 0, 1)
    const at = (seq: number, receivedAtMs: number) => ({ ...checkIn(dev, seq, OLD + seq * 1000), receivedAtMs })
    await store.uplinks.write({ records: [at(1, OLD), at(2, OLD + 1000), at(3, OLD + 400 * 86_400_000)] })
    t.equal(await store.uplinks.pruneSeen(OLD + 200 * 86_400_000), 2, 'the two keys received before the cutoff')
    t.equal(await store.uplinks.pruneSeen(OLD + 200 * 86_400_000), 0, 'idempotent')
    const again = await store.uplinks.write({ records: [at(1, Date.now()), at(3, Date.now())] })
    t.same(again.outcomes, ['new', 'duplicate'], 'a pruned key is claimed again, a kept one is still a duplicate')
    t.equal(await store.checkIns.count({ deviceId: dev }), 3, 'the re-sent check-in is not stored twice')
  })

  t.test('text columns round-trip characters that array literals quote or escape', async (t) => {
    // The pg driver passes the group's columns as pre-built array literals.
    const store = getStore()
    const dev = uid('dev "q\\ ,{}')
    const tags = ['a"b', 'c\\d', '\\"', 'NULL', '', ' x ', '{1,2}', 'a,b', '工号']
    await store.uplinks.write({ records: tags.map((tagId, i) => checkIn(dev, i + 1, T0 + i, { tagId, badgeId: tagId, lat: -0.5, lon: 1e-7 })) })
    const rows = await store.checkIns.list({ from: new Date(0), to: new Date(T0 * 2), deviceId: dev })
    t.same(rows.map((r) => [r.seq, r.tagId, r.badgeId]), tags.map((tag, i) => [i + 1, tag, tag]))
    t.same(rows.map((r) => [r.lat, r.lon]), tags.map(() => [-0.5, 1e-7]))
  })

  t.test('rows keep both clocks, seq and flags; unknown tags are kept and flagged', async (t) => {
    const store = getStore()
    const g = uid('D')
    await store.grids.create({ id: g, level: 'district', name: 'd' })
    const cp = await store.checkpoints.create({ id: uid('cp'), gridId: g, tagId: uid('T'), name: 'x' })
    const dev = uid('dev')
    await store.uplinks.write({
      records: [
        checkIn(dev, 7, T0, { checkpointId: cp.id, gridId: g, tagId: cp.tagId as string, lat: 32.1, lon: 118.8, badgeId: '工号 7', batteryPct: 80 }),
        checkIn(dev, 8, T0 + 400 * 86_400_000, { clockFuture: true, tagId: 'UNKNOWN' }),
      ],
    })
    const rows = await store.checkIns.list({ from: new Date(0), to: new Date(T0 * 2), deviceId: dev })
    t.equal(rows.length, 2)
    t.match(rows[0], { seq: 7, checkpointId: cp.id, gridId: g, unknownTag: false, badgeId: '工号 7', batteryPct: 80, clockFuture: false })
    t.equal(rows[0]?.deviceTime.getTime(), T0)
    t.equal(rows[0]?.receivedAt.getTime(), T0 + 1000)
    t.match(rows[1], { seq: 8, checkpointId: null, unknownTag: true, clockFuture: true, tagId: 'UNKNOWN' })
    t.equal((await store.devicesState.get(dev))?.batteryPct, 80)
    t.equal((await store.devicesState.get(dev))?.lastSeq, 8)
  })

  t.test('concurrent writers with overlapping keys: no deadlock, each key once', async (t) => {
    const store = getStore()
    const devs = [uid('a'), uid('b'), uid('c')]
    const recs = (offset: number): UplinkRecord[] =>
      devs.flatMap((d) => Array.from({ length: 50 }, (_, i) => checkIn(d, i + 1 + offset, T0 + (i + offset) * 1000)))
    const batches = [recs(0), recs(25).reverse(), recs(10), recs(40).reverse()]
    const results = await Promise.all(batches.map((records) => store.uplinks.write({ records })))
    const inserted = results.reduce((n, r) => n + r.inserted, 0)
    t.equal(inserted, devs.length * 90, 'each distinct (device, seq) inserted once')
    for (const d of devs) t.equal(await store.checkIns.count({ deviceId: d }), 90)
  })

  t.test('telemetry, status, alarms, presence', async (t) => {
    const store = getStore()
    const dev = uid('sensor')
    const base = { deviceId: dev, receivedAtMs: T0, clockFuture: false, clockAncient: false }
    const reading = (metric: string, value: number, at: number) => ({ metric, value, unit: 'm', deviceTimeMs: at, clockFuture: false, clockAncient: false })
    const r = await store.uplinks.write({
      records: [
        { ...base, kind: 'telemetry', seq: 1, deviceTimeMs: T0, readings: [reading('water_level', 1, T0), reading('water_level', 3, T0 + 60_000)] },
        { ...base, kind: 'telemetry', seq: 2, deviceTimeMs: T0 + HOUR, readings: [reading('water_level', 10, T0 + HOUR)] },
        { ...base, kind: 'status', seq: 3, deviceTimeMs: T0 + 10, batteryPct: 55, signalDbm: -70, firmwareVersion: '1.2.3' },
        { ...base, kind: 'status', seq: 4, deviceTimeMs: T0 - 10, batteryPct: 99 }, // older by device time: not the latest
        { ...base, kind: 'alarm', seq: 5, deviceTimeMs: T0 + 20, alarmKind: 'tamper', detail: 'lid open' },
      ],
      presence: [
        { deviceId: dev, receivedAtMs: T0, online: true },
        { deviceId: dev, receivedAtMs: T0 + 5, online: false, reason: 'will' },
      ],
    })
    t.equal(r.inserted, 5)
    const b = await store.telemetry.buckets({ deviceId: dev, metric: 'water_level', from: new Date(T0 - HOUR), to: new Date(T0 + 2 * HOUR), bucketSeconds: 3600 })
    t.same(
      b.map((x) => [x.bucket.getTime(), x.count, x.min, x.max, x.avg]),
      [
        [T0, 2, 1, 3, 2],
        [T0 + HOUR, 1, 10, 10, 10],
      ],
    )
    t.equal((await store.telemetry.list({ deviceId: dev, from: new Date(T0), to: new Date(T0 + 2 * HOUR) })).length, 3)
    const st = await store.devicesState.get(dev)
    t.match(st, { batteryPct: 55, online: false, lastSeq: 5 })
    await store.uplinks.write({ records: [], presence: [{ deviceId: dev, receivedAtMs: T0 - 1, online: true }] })
    t.equal((await store.devicesState.get(dev))?.online, false, 'an older presence event does not win')
    t.match(await store.alarms.list({ from: new Date(T0), to: new Date(T0 + HOUR), deviceId: dev }), [{ kind: 'tamper', detail: 'lid open', seq: 5 }])
  })

  t.test('commands: queue with ttl, deliver, ack closes, time sync estimates the clock', async (t) => {
    const store = getStore()
    const dev = uid('dev')
    const sync = uid('c-sync')
    const old = uid('c-old')
    await store.commands.enqueue({ commandId: old, deviceId: dev, kind: 'ping', body: { kind: 'ping', ping: { nonceHex: '01' } }, issuedAtMs: T0 - 10_000, expiresAtMs: T0 - 1 })
    await store.commands.enqueue({ commandId: sync, deviceId: dev, kind: 'time_sync', body: { kind: 'time_sync', timeSync: { serverTimeMs: T0 } }, issuedAtMs: T0, expiresAtMs: T0 + HOUR })
    t.same((await store.commands.pending(dev, T0)).map((c) => c.commandId), [sync], 'expired ones are not delivered')
    t.equal(await store.commands.expire(T0), 1)
    t.equal((await store.commands.get(old))?.status, 'expired')
    await store.commands.markSent([sync], T0 + 5)
    t.equal((await store.commands.get(sync))?.status, 'sent')
    // Device 2 s ahead, 100 ms each way, 10 ms processing: t1 = t0+100+2000, t2 = t1+10, t3 = t0+210.
    const w = await store.uplinks.write({
      records: [
        { kind: 'ack', deviceId: dev, seq: 1, deviceTimeMs: T0 + 2110, receivedAtMs: T0 + 210, clockFuture: false, clockAncient: false, commandId: sync, status: 'ok', receivedDeviceTimeMs: T0 + 2100 },
      ],
    })
    t.same(w.outcomes, ['new'])
    t.match(await store.commands.get(sync), { status: 'acked', ackStatus: 'ok' })
    t.equal((await store.commands.pending(dev, T0)).length, 0)
    const est = await store.clock.latest(dev)
    t.equal(est?.offsetMs, 2000)
    t.equal(est?.delayMs, 200)
    t.equal(est?.commandId, sync)
  })

  t.test('time sync: an expired ack still measures the clock; a round trip over 30 s does not', async (t) => {
    const store = getStore()
    const dev = uid('dev')
    const sync = async (n: number, at: number) => {
      const id = uid(`c-sync${n}`)
      await store.commands.enqueue({ commandId: id, deviceId: dev, kind: 'time_sync', body: { kind: 'time_sync', timeSync: { serverTimeMs: at } }, issuedAtMs: at, expiresAtMs: at + 60_000 })
      return id
    }
    const ack = (seq: number, commandId: string, status: string, t1: number, t2: number, t3: number) =>
      store.uplinks.write({ records: [{ kind: 'ack', deviceId: dev, seq, deviceTimeMs: t2, receivedAtMs: t3, clockFuture: false, clockAncient: false, commandId, status, receivedDeviceTimeMs: t1 }] })
    // the device's clock runs 2 h ahead: past the sync's 60 s time-to-live by its own clock, so it acks `expired`
    const a = await sync(1, T0)
    await ack(1, a, 'expired', T0 + 2 * HOUR + 100, T0 + 2 * HOUR + 110, T0 + 210)
    t.match(await store.clock.latest(dev), { offsetMs: 2 * HOUR, delayMs: 200, commandId: a }, 'an expired ack with t1 gives the estimate')
    // an ack held in the device's buffer and uploaded 3 h later: delay 3 h, an estimate off by 1.5 h
    const b = await sync(2, T0 + HOUR)
    await ack(2, b, 'ok', T0 + 3 * HOUR, T0 + 3 * HOUR + 10, T0 + 4 * HOUR)
    t.match(await store.commands.get(b), { status: 'acked', ackStatus: 'ok' }, 'the ack closes its command')
    t.match(await store.clock.latest(dev), { commandId: a }, 'but gives no estimate')
    // 30 s exactly is still used; a rejected ack never is
    const c = await sync(3, T0 + 5 * HOUR)
    await ack(3, c, 'ok', T0 + 7 * HOUR + 15_000, T0 + 7 * HOUR + 15_000, T0 + 5 * HOUR + 30_000)
    t.match(await store.clock.latest(dev), { offsetMs: 2 * HOUR, delayMs: 30_000, commandId: c })
    const d = await sync(4, T0 + 6 * HOUR)
    await ack(4, d, 'rejected', T0 + 6 * HOUR, T0 + 6 * HOUR, T0 + 6 * HOUR + 100)
    t.match(await store.clock.latest(dev), { commandId: c })
    // many devices in one query: each one's latest; a device never measured is left out
    t.match(await store.clock.latestOf([dev, uid('never'), dev]), [{ deviceId: dev, commandId: c, offsetMs: 2 * HOUR }])
    t.equal((await store.clock.latestOf([dev, uid('never')])).length, 1)
    t.same(await store.clock.latestOf([]), [])
    // pruning keeps each device's latest: dev's three estimates before +6 h go (not its latest, c)
    const lone = uid('lone')
    const e = uid('c-lone')
    await store.commands.enqueue({ commandId: e, deviceId: lone, kind: 'time_sync', body: { kind: 'time_sync', timeSync: { serverTimeMs: T0 } }, issuedAtMs: T0, expiresAtMs: null })
    await store.uplinks.write({ records: [{ kind: 'ack', deviceId: lone, seq: 1, deviceTimeMs: T0, receivedAtMs: T0 + 10, clockFuture: false, clockAncient: false, commandId: e, status: 'ok', receivedDeviceTimeMs: T0 }] })
    t.equal(await store.clock.prune(T0 + 6 * HOUR), 1, "dev's estimate a (b gave none, c is its latest); lone's only one stays")
    t.match(await store.clock.latestOf([dev, lone]), [{ deviceId: dev, commandId: c }, { deviceId: lone, commandId: e }])
    t.equal(await store.clock.prune(T0 + 6 * HOUR), 0, 'idempotent')
  })

  t.test('rejects keep the raw bytes exactly', async (t) => {
    const store = getStore()
    const dev = uid('dev')
    const all = new Uint8Array(256).map((_, i) => i)
    await store.uplinks.write({
      records: [],
      rejects: [
        { receivedAtMs: T0, topic: `gp/v1/${dev}/up/checkin`, deviceId: dev, payload: all, code: 'GP_PROTO_DECODE', message: 'bad wire type at offset 3', field: 'seq' },
        { receivedAtMs: T0, topic: 'gp/v1/x/up/checkin', deviceId: dev, payload: new Uint8Array(0), code: 'GP_PROTO_INVALID', message: 'empty' },
      ],
    })
    const rows = await store.rejects.list({ deviceId: dev })
    t.equal(rows.length, 2)
    t.same(Buffer.from(rows[0]?.payload ?? []).toString('hex'), Buffer.from(all).toString('hex'))
    t.equal(rows[1]?.payload.length, 0)
    t.ok(rows[0]?.payload instanceof Uint8Array)
    const counts = await store.rejects.countByCode()
    t.ok((counts['GP_PROTO_DECODE'] ?? 0) >= 1)
  })

  t.test('hourly visits per checkpoint: same answers with or without TimescaleDB, late data included', async (t) => {
    const store = getStore()
    const g = uid('D')
    await store.grids.create({ id: g, level: 'district', name: 'd' })
    const a = await store.checkpoints.create({ id: uid('cpA'), gridId: g, tagId: uid('TA'), name: 'a' })
    const b = await store.checkpoints.create({ id: uid('cpB'), gridId: g, tagId: uid('TB'), name: 'b' })
    const dev = uid('dev')
    const at = (seq: number, cp: string, ms: number) => checkIn(dev, seq, ms, { checkpointId: cp, gridId: g })
    await store.uplinks.write({ records: [at(1, a.id, T0 + 60_000), at(2, a.id, T0 + 120_000), at(3, b.id, T0 + HOUR + 5)] })
    await store.refreshAggregates(new Date(T0 - HOUR), new Date(T0 + 3 * HOUR))
    // Late store-and-forward upload into an hour already materialised.
    await store.uplinks.write({ records: [at(4, a.id, T0 + 30_000)] })
    await store.refreshAggregates(new Date(T0 - HOUR), new Date(T0 + 3 * HOUR))
    const v = await store.checkIns.hourlyVisits({ from: new Date(T0 - HOUR), to: new Date(T0 + 3 * HOUR), gridId: g })
    t.same(
      v.map((x) => [x.bucket.getTime(), x.checkpointId, x.visits, x.firstAt.getTime(), x.lastAt.getTime()]),
      [
        [T0, a.id, 3, T0 + 30_000, T0 + 120_000],
        [T0 + HOUR, b.id, 1, T0 + HOUR + 5, T0 + HOUR + 5],
      ],
    )
    const only = await store.checkIns.hourlyVisits({ from: new Date(T0), to: new Date(T0 + HOUR), checkpointIds: [b.id] })
    t.same(only, [])
  })

  t.test('watermark and touched: latest receipt time of an accepted uplink; check-ins received in (since, until]', async (t) => {
    const store = getStore()
    const dev = uid('dev')
    const tag = uid('TW')
    // Receipt times in 2090, after any other test's: the watermark is this test's.
    const FUT = Date.UTC(2090, 0, 1)
    const at = (seq: number, deviceTimeMs: number, receivedAtMs: number) => ({ ...checkIn(dev, seq, deviceTimeMs, { tagId: tag }), receivedAtMs })
    await store.uplinks.write({ records: [at(1, T0, FUT + 1_000), at(2, T0 + HOUR, FUT + 2_000)] })
    t.equal(await store.watermark.current(), FUT + 2_000)
    await store.uplinks.write({ records: [at(2, T0 + HOUR, FUT + 5_000)], presence: [{ deviceId: dev, receivedAtMs: FUT + 9_000, online: true }] })
    t.equal(await store.watermark.current(), FUT + 2_000, 'neither a duplicate nor a presence event moves it')
    const base = { deviceId: dev, clockFuture: false, clockAncient: false }
    await store.uplinks.write({ records: [{ ...base, kind: 'status', seq: 3, deviceTimeMs: T0 + 2 * HOUR, receivedAtMs: FUT + 3_000, batteryPct: 50 }] })
    t.equal(await store.watermark.current(), FUT + 3_000, 'any kind of uplink moves it')
    const mine = async (since: number, until: number) => (await store.coverage.touched(since, until)).filter((x) => x.tag === tag)
    t.same(await mine(FUT, FUT + 3_000), [{ tag, deviceGridId: null, fromMs: T0, toMs: T0 + HOUR, firstAtMs: T0 }])
    t.same(await mine(FUT + 1_000, FUT + 3_000), [{ tag, deviceGridId: null, fromMs: T0 + HOUR, toMs: T0 + HOUR, firstAtMs: T0 + HOUR }], 'since is exclusive')
    t.same(await mine(FUT + 2_000, FUT + 3_000), [], 'the status uplink is no check-in')
    // A late commit with an older receipt time (a group retried after an outage) is found by range.
    await store.uplinks.write({ records: [at(4, T0 - HOUR, FUT + 1_500)] })
    t.equal(await store.watermark.current(), FUT + 3_000, 'an older receipt time does not lower it')
    t.same(await mine(FUT + 1_000, FUT + 1_600), [{ tag, deviceGridId: null, fromMs: T0 - HOUR, toMs: T0 - HOUR, firstAtMs: T0 - HOUR }])
    t.same(await mine(FUT, FUT + 3_000), [{ tag, deviceGridId: null, fromMs: T0 - HOUR, toMs: T0 + HOUR, firstAtMs: T0 - HOUR }])
    // firstAtMs: the earliest timed as stage A times it, less the device's latest clock offset (here +90 s)
    const sync = uid('ts')
    await store.commands.enqueue({ commandId: sync, deviceId: dev, kind: 'time_sync', body: { timeSync: { serverTimeMs: FUT + 6_000 } }, issuedAtMs: FUT + 6_000, expiresAtMs: null })
    await store.uplinks.write({
      records: [{ ...base, kind: 'ack', seq: 5, deviceTimeMs: FUT + 96_000, receivedAtMs: FUT + 6_000, commandId: sync, status: 'ok', receivedDeviceTimeMs: FUT + 96_000 }],
    })
    await store.uplinks.write({ records: [at(6, T0 + 2 * HOUR, FUT + 7_000)] })
    t.same(await mine(FUT + 6_500, FUT + 7_000), [{ tag, deviceGridId: null, fromMs: T0 + 2 * HOUR, toMs: T0 + 2 * HOUR, firstAtMs: T0 + 2 * HOUR - 90_000 }], 'offset applied')
  })
}
