// GPS check-ins (no tag) are credited to the geofence of the device's grid that
// holds the fix; outside every fence they are kept and flagged, never dropped.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { pino } from 'pino'
import { encodeUplink, uplinkTopic, type Uplink } from '../../firmware-protocol/index.ts'
import { createIngest } from '../../ingest/index.ts'
import { openEmbeddedStore } from '../helpers/store.ts'

const HASH = 'scrypt$16384$8$1$c2FsdA==$aGFzaA=='
const uid = (p: string) => `${p}-${randomBytes(3).toString('hex')}`

t.test('a GPS fix inside a geofence names the checkpoint; outside is kept as unknown', async (t) => {
  const store = await openEmbeddedStore(t)
  const [d, s, g, dev] = [uid('D'), uid('S'), uid('G'), uid('gps')]
  await store.grids.create({ id: d, level: 'district', name: d })
  await store.grids.create({ id: s, level: 'street', parentId: d, name: s })
  await store.grids.create({ id: g, level: 'community', parentId: s, name: g })
  const fence = uid('CP')
  await store.checkpoints.create({ id: fence, gridId: g, tagId: null, name: 'bus stop', lat: -33.8688, lon: -70.6693, radiusM: 40 })
  await store.devices.create({ id: dev, kind: 'patrol', gridId: g, secretHash: HASH })

  const ingest = createIngest({ store, log: pino({ level: 'silent' }) })
  t.teardown(() => ingest.close())
  const now = Date.now()
  const gps = (seq: number, lat: number, lon: number, accuracyM = 5): Uplink => ({
    seq,
    deviceTimeMs: now - 60_000 + seq,
    kind: 'checkin',
    checkin: { tagId: '', method: 'gps', fix: { lat, lon, accuracyM } },
  })
  for (const u of [gps(1, -33.86885, -70.66925), gps(2, -33.8700, -70.6693), gps(3, -33.8688, -70.6693, 500)])
    await ingest.ingest({ deviceId: dev, kind: 'checkin', topic: uplinkTopic(dev, 'checkin'), payload: encodeUplink(u), receivedAt: new Date(now) })

  const rows = await store.checkIns.list({ from: new Date(now - 3_600_000), to: new Date(now + 60_000), deviceId: dev })
  const bySeq = new Map(rows.map((r) => [r.seq, r]))
  t.equal(rows.length, 3, 'all three stored')
  t.equal(bySeq.get(1)?.checkpointId, fence, 'inside the fence: credited')
  t.equal(bySeq.get(1)?.unknownTag, false)
  t.equal(bySeq.get(2)?.checkpointId, null, '130 m away: no checkpoint')
  t.equal(bySeq.get(2)?.unknownTag, true, 'flagged, not dropped')
  t.equal(bySeq.get(3)?.checkpointId, null, 'a 500 m accuracy fix proves nothing')
})
