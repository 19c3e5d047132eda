import t from 'tap'
import type { Store } from '../../src/store/types.ts'
import { serverUrl } from '../helpers/db.ts'
import { openServerStore } from '../helpers/store.ts'
import { storeContract } from './contract.ts'

if (!serverUrl()) {
  t.pass('DATABASE_URL is not set: server driver not tested')
} else {
  let store: Store | undefined
  t.before(async () => {
    store = await openServerStore(t)
  })
  t.test('server driver reports its flavour', async (t) => {
    t.equal(store?.capabilities.driver, 'pg')
    t.type(store?.capabilities.timescale, 'boolean')
  })
  storeContract(t, () => store as Store)
}
