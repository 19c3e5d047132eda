// The batcher's group commit against a real store: a stream of small messages
// waits for the transaction in flight and goes into the next one together (one
// statement per group is what the database pays for), while full groups still
// run on every writer. The store is real; the test only holds its writes at a
// gate to see what the batcher does meanwhile.
import t from 'tap'
import { Batcher, type BatchItem } from '../../ingest/batcher.ts'
import { createMetrics } from '../../ingest/metrics.ts'
import type { Store, WriteBatch } from '../../src/store/types.ts'
import { openEmbeddedStore, openServerStore, silentLog } from '../helpers/store.ts'

const store = (await openServerStore(t)) ?? (await openEmbeddedStore(t))
await store.devices.create({ id: 'gc-dev', kind: 'patrol', secretHash: 'scrypt$16384$8$1$AAAA$AAAA' })

/** The real store, its writes held until `open()`; records the groups and the writes in flight. */
function gated(real: Store) {
  let release: () => void = () => undefined
  let gate = new Promise<void>((r) => (release = r))
  const groups: number[] = []
  let inflight = 0
  let maxInflight = 0
  const s: Store = {
    ...real,
    uplinks: {
      ...real.uplinks,
      async write(b: WriteBatch) {
        groups.push(b.records.length + (b.rejects?.length ?? 0) + (b.presence?.length ?? 0))
        maxInflight = Math.max(maxInflight, ++inflight)
        try {
          await gate
          return await real.uplinks.write(b)
        } finally {
          inflight--
        }
      },
    },
  }
  return {
    store: s,
    groups,
    get maxInflight() {
      return maxInflight
    },
    open() {
      release()
      gate = Promise.resolve()
    },
  }
}

const presence = (k: number): BatchItem => ({ records: [], rejects: [], presence: [{ deviceId: 'gc-dev', receivedAtMs: Date.UTC(2026, 11, 7) + k, online: k % 2 === 0, reason: 'connect' }] })
const tick = () => new Promise((r) => setImmediate(r))

t.test('single messages arriving while a group commits wait for it and share the next one', async (t) => {
  const g = gated(store)
  const b = new Batcher(g.store, { maxBatchRows: 5000, maxQueuedRows: 50_000, writers: 4, retry: { initialMs: 10, maxMs: 50 } }, createMetrics(), silentLog)
  const done: Array<Promise<unknown>> = [b.submit(presence(0))]
  await tick()
  await tick()
  for (let k = 1; k <= 300; k++) {
    done.push(b.submit(presence(k)))
    if (k % 10 === 0) await tick() // arrivals over many event-loop turns
  }
  await tick()
  t.same(g.groups, [1], 'nothing else starts while the first group commits (4 writers allowed)')
  g.open()
  await Promise.all(done)
  t.same(g.groups, [1, 300], 'the 300 that arrived meanwhile commit as one group')
  t.equal(g.maxInflight, 1)
  await b.close()
})

t.test('full groups waiting use every writer', async (t) => {
  const g = gated(store)
  const b = new Batcher(g.store, { maxBatchRows: 10, maxQueuedRows: 50_000, writers: 3, retry: { initialMs: 10, maxMs: 50 } }, createMetrics(), silentLog)
  const done = Array.from({ length: 60 }, (_, k) => b.submit(presence(1000 + k)))
  await tick()
  await tick()
  t.equal(g.maxInflight, 3, 'three groups of 10 in flight at once')
  g.open()
  await Promise.all(done)
  t.equal(g.groups.reduce((a, n) => a + n, 0), 60, 'every message committed')
  t.ok(g.groups.every((n) => n <= 10), `groups within maxBatchRows: ${g.groups.join(',')}`)
  await b.close()
})
