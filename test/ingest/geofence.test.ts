import t from 'tap'
import { distanceM, matchGeofence, MAX_FIX_ACCURACY_M, type Geofence } from '../../ingest/stages/geofence.ts'

// Two fences 80 m apart on a Shanghai street, one near the antimeridian, one south-west.
const fences: Geofence[] = [
  { checkpointId: 'CP-A', lat: 31.2304, lon: 121.4737, radiusM: 30 },
  { checkpointId: 'CP-B', lat: 31.23112, lon: 121.4737, radiusM: 60 },
  { checkpointId: 'CP-DATELINE', lat: -17.7134, lon: 179.9997, radiusM: 100 },
  { checkpointId: 'CP-SW', lat: -33.8688, lon: -70.6693, radiusM: 25 },
]

t.test('distance is haversine metres', async (t) => {
  t.ok(Math.abs(distanceM(31.2304, 121.4737, 31.23112, 121.4737) - 80) < 1, '0.00072° of latitude ≈ 80 m')
  t.equal(distanceM(10, 20, 10, 20), 0)
  t.ok(Math.abs(distanceM(-17.7134, 179.9995, -17.7134, -179.9995) - 106) < 2, 'across the antimeridian is short')
})

t.test('a fix inside a fence names its checkpoint; outside names none', async (t) => {
  const cases: Array<[string, { lat: number; lon: number; accuracyM?: number }, string | null]> = [
    ['at the centre of A', { lat: 31.2304, lon: 121.4737 }, 'CP-A'],
    ['25 m north of A (inside A only)', { lat: 31.230625, lon: 121.4737 }, 'CP-A'],
    ['between: inside both, nearer B', { lat: 31.2308, lon: 121.4737 }, 'CP-B'],
    ['200 m away from everything', { lat: 31.2322, lon: 121.4737 }, null],
    ['south-western hemisphere', { lat: -33.86885, lon: -70.66925 }, 'CP-SW'],
    ['just past the antimeridian', { lat: -17.7134, lon: -179.9998 }, 'CP-DATELINE'],
    ['inside A but accuracy too poor', { lat: 31.2304, lon: 121.4737, accuracyM: MAX_FIX_ACCURACY_M + 1 }, null],
    ['inside A with a good accuracy', { lat: 31.2304, lon: 121.4737, accuracyM: 5 }, 'CP-A'],
  ]
  for (const [name, fix, want] of cases) t.equal(matchGeofence(fences, fix), want, name)
  t.equal(matchGeofence([], { lat: 0, lon: 0 }), null, 'no fences, no match')
})

t.test('equidistant overlapping fences resolve to the smaller id, whatever the order', async (t) => {
  const twins: Geofence[] = [
    { checkpointId: 'Z', lat: 1, lon: 1, radiusM: 50 },
    { checkpointId: 'M', lat: 1, lon: 1, radiusM: 50 },
  ]
  t.equal(matchGeofence(twins, { lat: 1, lon: 1 }), 'M')
  t.equal(matchGeofence([...twins].reverse(), { lat: 1, lon: 1 }), 'M')
})
