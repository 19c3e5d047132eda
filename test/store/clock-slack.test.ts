// The scan slack (queries/clock.ts offsetSlacks): the largest |offset| that can time a row
// of a grid-day — every device's latest and every measurement since the grid-day's cut —
// now and as of earlier instants, several asked at once. Both drivers.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Db } from '../../src/store/db.ts'
import { openPg } from '../../src/store/drivers/pg.ts'
import { openPglite } from '../../src/store/drivers/pglite.ts'
import { migrate } from '../../src/store/migrate.ts'
import { offsetSlacks } from '../../src/store/queries/clock.ts'
import { makeTestDatabase } from '../helpers/db.ts'
import { silentLog } from '../helpers/store.ts'

const H = 3_600_000
const T0 = Date.UTC(2024, 5, 1)

async function open(driver: 'embedded' | 'server', t: { teardown(f: () => unknown): void }): Promise<Db | undefined> {
  if (driver === 'embedded') {
    const dir = await mkdtemp(join(tmpdir(), 'gp-slack-'))
    const o = await openPglite(dir)
    t.teardown(async () => {
      await o.db.close()
      await rm(dir, { recursive: true, force: true })
    })
    await migrate(o.db, { timescale: o.timescale, tsl: o.tsl })
    return o.db
  }
  const made = await makeTestDatabase('gp_slack')
  if (!made) return undefined
  const o = await openPg(made.url, silentLog)
  t.teardown(async () => {
    await o.db.close()
    await made.drop()
  })
  await migrate(o.db, { timescale: o.timescale, tsl: o.tsl })
  return o.db
}

for (const driver of ['embedded', 'server'] as const) {
  t.test(`offsetSlacks (${driver})`, async (t) => {
    const db = await open(driver, t)
    if (!db) return
    const put = (dev: string, at: number, off: number, seq: number) =>
      db.query('INSERT INTO clock_offsets (device_id, measured_at, offset_ms, delay_ms, seq) VALUES ($1, to_timestamp($2::float8 / 1000), $3, 0, $4)', [dev, at, off, seq])
    t.strictSame(await offsetSlacks(db, [{ cutMs: T0 }]), [0], 'no measurement: 0')
    // a: +40 min at T0 + 1 h, then corrected (−1.4 s) at T0 + 5 h; b: −3 min at T0 + 2 h
    await put('a', T0 + H, 40 * 60_000, 10)
    await put('b', T0 + 2 * H, -3 * 60_000, 7)
    await put('a', T0 + 5 * H, -1400.4, 20)
    t.strictSame(
      await offsetSlacks(db, [
        { cutMs: T0 }, // since T0: a's +40 min still counts (it times a's rows before its second sync)
        { cutMs: T0 + 3 * H }, // since after it: only the latest of each (b's 3 min, a's 1.4 s) and a's second
        { cutMs: T0, asOfMs: T0 + 90 * 60_000 }, // as of 01:30: only a's first was measured
        { cutMs: T0 + 3 * H, asOfMs: T0 + 4 * H }, // as of 04:00: a's latest was still its +40 min
        { cutMs: T0 + 3 * H, asOfMs: T0 + 30 * 60_000 }, // before any measurement
        { cutMs: T0 }, // asked twice: answered twice
      ]),
      [40 * 60_000, 3 * 60_000, 40 * 60_000, 40 * 60_000, 0, 40 * 60_000],
    )
    t.strictSame(await offsetSlacks(db, []), [])
  })
}
