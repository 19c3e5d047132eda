import t from 'tap'
import type { Store } from '../../src/store/types.ts'
import { openStore } from '../../src/store/index.ts'
import { openEmbeddedStore, silentLog } from '../helpers/store.ts'
import { storeContract } from './contract.ts'

let store: Store | undefined
t.before(async () => {
  store = await openEmbeddedStore(t)
})

t.test('embedded PGlite loads TimescaleDB', async (t) => {
  t.same(store?.capabilities, { timescale: true, driver: 'pglite' })
})

storeContract(t, () => store as Store)

t.test('a reopened data directory keeps its rows and still writes (restart)', async (t) => {
  const { mkdtemp, rm } = await import('node:fs/promises')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const dataDir = await mkdtemp(join(tmpdir(), 'gp-reopen-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const T = Date.UTC(2026, 0, 5)
  const rec = (seq: number) => ({
    kind: 'checkin' as const, deviceId: 'reopen', seq, deviceTimeMs: T + seq, receivedAtMs: T + seq,
    clockFuture: false, clockAncient: false, tagId: 'X', method: 'nfc', checkpointId: null, gridId: null,
  })
  const first = await openStore({ dataDir, databaseUrl: undefined }, silentLog)
  await first.migrate()
  await first.uplinks.write({ records: [rec(1)] })
  await first.close()
  const second = await openStore({ dataDir, databaseUrl: undefined }, silentLog)
  t.teardown(() => second.close())
  const r = await second.migrate()
  t.same(r.applied, [], 'nothing to apply on reopen')
  t.same((await second.uplinks.write({ records: [rec(1), rec(2)] })).outcomes, ['duplicate', 'new'])
  t.equal(await second.checkIns.count({ deviceId: 'reopen' }), 2)
  t.equal((await second.checkIns.hourlyVisits({ from: new Date(T - 1), to: new Date(T + 3_600_000) })).length, 0)
})
