// The dedup stage's recent keys: bounded (oldest first), committed outcomes only.
import t from 'tap'
import { RecentKeys } from '../../ingest/stages/dedup.ts'
import type { UplinkRecord } from '../../src/store/types.ts'

const rec = (deviceId: string, seq: number, deviceTimeMs = 1000 + seq): UplinkRecord => ({
  kind: 'checkin',
  deviceId,
  seq,
  deviceTimeMs,
  receivedAtMs: 0,
  clockFuture: false,
  clockAncient: false,
  tagId: 'T',
  method: 'nfc',
  checkpointId: null,
  gridId: null,
})

t.test('bounded to capacity, the oldest key dropped first', async (t) => {
  const k = new RecentKeys(3)
  k.remember([rec('a', 1), rec('b', 1), rec('a', 2)])
  k.remember([rec('a', 3), rec('b', 2)])
  t.equal(k.size, 3)
  t.equal(k.get(rec('a', 1)), undefined, 'oldest gone')
  t.equal(k.get(rec('b', 1)), undefined, 'second oldest gone')
  t.equal(k.get(rec('a', 2)), 1002)
  t.equal(k.get(rec('a', 3)), 1003)
  t.equal(k.get(rec('b', 2)), 1002)
  for (let s = 10; s < 1000; s++) k.remember([rec(`d${s % 7}`, s)])
  t.equal(k.size, 3, 'still bounded after wrapping the ring many times')
  t.equal(k.get(rec('d5', 999)), 1999)
})

t.test('a key held again is updated, not added twice', async (t) => {
  const k = new RecentKeys(2)
  k.remember([rec('a', 1)])
  k.remember([rec('a', 1, 5)])
  t.equal(k.size, 1)
  t.equal(k.get(rec('a', 1)), 5)
  k.remember([rec('b', 1), rec('c', 1)])
  t.equal(k.size, 2)
  t.equal(k.get(rec('a', 1)), undefined)
})

t.test('only new and duplicate outcomes are remembered', async (t) => {
  const k = new RecentKeys(10)
  k.remember([rec('a', 1), rec('a', 2), rec('a', 3)], ['new', 'conflict', 'duplicate'])
  t.equal(k.get(rec('a', 1)), 1001)
  t.equal(k.get(rec('a', 2)), undefined, 'a seq conflict is not what was committed')
  t.equal(k.get(rec('a', 3)), 1003)
  k.remember([rec('b', 1)], [])
  t.equal(k.get(rec('b', 1)), undefined, 'no outcome (stored as a reject): not remembered')
  t.equal(k.size, 2)
})

t.test('capacity 0 remembers nothing', async (t) => {
  const k = new RecentKeys(0)
  k.remember([rec('a', 1)])
  t.equal(k.size, 0)
  t.equal(k.get(rec('a', 1)), undefined)
})
