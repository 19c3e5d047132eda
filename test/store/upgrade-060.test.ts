// Migration 060 (checkpoint_tags) on data written before it: every checkpoint's
// one tag (checkpoints.tag_id) becomes its first registered tag, so the ingest
// (byTags) still resolves it, and more can be added. Embedded and, with
// DATABASE_URL, server.
import t, { type Test } from 'tap'
import type { Db } from '../../src/store/db.ts'
import type { Store } from '../../src/store/types.ts'
import { upgradeBothDrivers } from '../helpers/store.ts'

const before060 = (f: string) => /^0[0-5]\d-.*\.sql$/.test(f)

/** Rows as the release before 060 wrote them: two tagged checkpoints, one GPS-only. */
async function seedOld(db: Db): Promise<void> {
  await db.query(`INSERT INTO grids (id, level, name) VALUES ('up60-g', 'district', 'g')`)
  await db.query(`INSERT INTO checkpoints (id, grid_id, tag_id, name, created_at) VALUES ('up60-a', 'up60-g', 'UP60-TA', 'a', '2025-01-02T03:04:05Z')`)
  await db.query(`INSERT INTO checkpoints (id, grid_id, tag_id, name) VALUES ('up60-b', 'up60-g', 'UP60-TB', 'b')`)
  await db.query(`INSERT INTO checkpoints (id, grid_id, tag_id, name, lat, lon) VALUES ('up60-fence', 'up60-g', NULL, 'fence', 32, 118)`)
}

async function checkBackfill(t: Test, store: Store): Promise<void> {
  const report = await store.migrate()
  t.ok(report.applied.includes('060-checkpoint-tags'), 'migration 060 applied')
  const m = await store.checkpoints.byTags(['UP60-TA', 'UP60-TB', 'UP60-NEW'])
  t.same(m.get('UP60-TA'), { checkpointId: 'up60-a', gridId: 'up60-g' }, 'an old tag still resolves')
  t.same(m.get('UP60-TB'), { checkpointId: 'up60-b', gridId: 'up60-g' })
  t.equal(m.has('UP60-NEW'), false)
  t.same((await store.checkpoints.listByGrid('up60-g')).map((c) => [c.id, c.tagId, c.tagIds]), [
    ['up60-a', 'UP60-TA', ['UP60-TA']],
    ['up60-b', 'UP60-TB', ['UP60-TB']],
    ['up60-fence', null, []],
  ])
  // a replacement added after the upgrade ranks after the backfilled tag (added when the checkpoint was created)
  const { checkpoint } = await store.checkpoints.addTag('up60-a', 'UP60-NEW')
  t.same([checkpoint.tagId, checkpoint.tagIds], ['UP60-TA', ['UP60-TA', 'UP60-NEW']])
  await t.rejects(store.checkpoints.addTag('up60-b', 'UP60-TA'), { message: /tag "UP60-TA" already belongs to checkpoint "up60-a"/ }, 'a backfilled tag is taken')
  t.equal((await store.checkpoints.removeTag('up60-a', 'UP60-TA')).tagId, 'UP60-NEW')
}

upgradeBothDrivers(t, '050 → 060 registers every checkpoint\'s tag', 'gp-up060', before060, seedOld, checkBackfill)
