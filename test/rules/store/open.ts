// Opens the store for rules tests (one per test file: PGlite costs 2-3 s and
// ~400 MiB) on the embedded driver, or on a throwaway server database when
// DATABASE_URL is set. Not a test file.
import type { Store } from '../../../src/store/types.ts'
import { openEmbeddedStore, openServerStore } from '../../helpers/store.ts'

interface T {
  teardown(fn: () => unknown): void
}

export type Driver = 'embedded' | 'server'

export async function openRulesStore(t: T, driver: Driver): Promise<Store | undefined> {
  return driver === 'embedded' ? openEmbeddedStore(t) : openServerStore(t)
}

/** The drivers to run a suite on: embedded always, server when DATABASE_URL is set. */
export const drivers = (): Driver[] => (process.env['DATABASE_URL'] ? ['embedded', 'server'] : ['embedded'])
