import { StoreError, type Db, type Queryable } from '../db.ts'
import type { CheckpointRow, DeviceRow, GridRow, Store } from '../types.ts'

const GRID_COLS = `id, level, parent_id AS "parentId", name, standard_code AS "standardCode", boundary,
  time_zone AS "timeZone", created_at AS "createdAt"`
const CHECKPOINT_COLS = `id, grid_id AS "gridId", tag_id AS "tagId", name, lat, lon, radius_m AS "radiusM", created_at AS "createdAt"`
const DEVICE_COLS = `id, kind, vendor, grid_id AS "gridId", secret_hash AS "secretHash", disabled,
  created_at AS "createdAt", rotated_at AS "rotatedAt"`

export function gridQueries(db: Queryable): Store['grids'] {
  return {
    async create(g) {
      const [row] = await db.query<GridRow>(
        `INSERT INTO grids (id, level, parent_id, name, standard_code, boundary, time_zone)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, COALESCE($7, 'Asia/Shanghai')) RETURNING ${GRID_COLS}`,
        [g.id, g.level, g.parentId ?? null, g.name, g.standardCode ?? null, g.boundary ? JSON.stringify(g.boundary) : null, g.timeZone ?? null],
      )
      return row as GridRow
    },
    async get(id) {
      return (await db.query<GridRow>(`SELECT ${GRID_COLS} FROM grids WHERE id = $1`, [id]))[0]
    },
    async list(f = {}) {
      return db.query<GridRow>(
        `SELECT ${GRID_COLS} FROM grids
         WHERE ($1::boolean IS FALSE OR parent_id IS NOT DISTINCT FROM $2) AND ($3::text IS NULL OR level = $3)
         ORDER BY id`,
        [f.parentId !== undefined, f.parentId ?? null, f.level ?? null],
      )
    },
  }
}

/** Every tag of checkpoint `c`, oldest first (the order checkpoints.tag_id follows). */
const TAG_IDS = `coalesce((SELECT array_agg(t.tag_id ORDER BY t.added_at, t.tag_id) FROM checkpoint_tags t WHERE t.checkpoint_id = c.id), '{}'::text[]) AS "tagIds"`
/** checkpoints.tag_id := the checkpoint's oldest tag (NULL when it has none), for readers of the one-tag column. */
const SYNC_FIRST_TAG = `UPDATE checkpoints SET tag_id = (SELECT t.tag_id FROM checkpoint_tags t WHERE t.checkpoint_id = $1 ORDER BY t.added_at, t.tag_id LIMIT 1)
  WHERE id = $1`

const invalid = (message: string) => new StoreError('GP_STORE_INVALID', message)

async function checkpointRow(q: Queryable, id: string): Promise<CheckpointRow | undefined> {
  return (await q.query<CheckpointRow>(`SELECT ${CHECKPOINT_COLS}, ${TAG_IDS} FROM checkpoints c WHERE id = $1`, [id]))[0]
}

async function tagOwner(q: Queryable, tagId: string): Promise<string | undefined> {
  return (await q.query<{ id: string }>('SELECT checkpoint_id AS id FROM checkpoint_tags WHERE tag_id = $1', [tagId]))[0]?.id
}

/** Tags live in checkpoint_tags (one checkpoint per tag); checkpoints.tag_id is kept equal to the oldest. */
export function checkpointQueries(db: Db): Store['checkpoints'] {
  return {
    async create(c) {
      return db.transaction(async (tx) => {
        if (c.tagId !== null) {
          const owner = await tagOwner(tx, c.tagId)
          if (owner !== undefined) throw invalid(`tag "${c.tagId}" already belongs to checkpoint "${owner}"; checkpoint "${c.id}" not added`)
        }
        await tx.query(
          `INSERT INTO checkpoints (id, grid_id, tag_id, name, lat, lon, radius_m)
           VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, 30))`,
          [c.id, c.gridId, c.tagId, c.name, c.lat ?? null, c.lon ?? null, c.radiusM ?? null],
        )
        if (c.tagId !== null) await tx.query('INSERT INTO checkpoint_tags (tag_id, checkpoint_id, added_at) SELECT tag_id, id, created_at FROM checkpoints WHERE id = $1', [c.id])
        return (await checkpointRow(tx, c.id)) as CheckpointRow
      })
    },
    async get(id) {
      return checkpointRow(db, id)
    },
    async listByGrid(gridId) {
      return db.query<CheckpointRow>(`SELECT ${CHECKPOINT_COLS}, ${TAG_IDS} FROM checkpoints c WHERE grid_id = $1 ORDER BY id`, [gridId])
    },
    async byTags(tagIds) {
      const out = new Map<string, { checkpointId: string; gridId: string }>()
      if (tagIds.length === 0) return out
      const rows = await db.query<{ tagId: string; id: string; gridId: string }>(
        `SELECT t.tag_id AS "tagId", c.id, c.grid_id AS "gridId" FROM checkpoint_tags t JOIN checkpoints c ON c.id = t.checkpoint_id
         WHERE t.tag_id = ANY($1::text[])`,
        [[...new Set(tagIds)]],
      )
      for (const r of rows) out.set(r.tagId, { checkpointId: r.id, gridId: r.gridId })
      return out
    },
    async addTag(checkpointId, tagId) {
      if (tagId.trim() === '') throw invalid(`an empty tag id cannot be added to checkpoint "${checkpointId}"`)
      return db.transaction(async (tx) => {
        if ((await tx.query('SELECT 1 FROM checkpoints WHERE id = $1 FOR UPDATE', [checkpointId])).length === 0) {
          throw invalid(`checkpoint "${checkpointId}" does not exist`)
        }
        const inserted = await tx.query('INSERT INTO checkpoint_tags (tag_id, checkpoint_id) VALUES ($1, $2) ON CONFLICT (tag_id) DO NOTHING RETURNING tag_id', [tagId, checkpointId])
        if (inserted.length === 0) {
          const owner = await tagOwner(tx, tagId)
          if (owner !== checkpointId) throw invalid(`tag "${tagId}" already belongs to checkpoint "${owner ?? '?'}"; not added to checkpoint "${checkpointId}"`)
        } else {
          await tx.query(SYNC_FIRST_TAG, [checkpointId])
        }
        return { checkpoint: (await checkpointRow(tx, checkpointId)) as CheckpointRow, added: inserted.length > 0 }
      })
    },
    async removeTag(checkpointId, tagId) {
      return db.transaction(async (tx) => {
        const [cp] = await tx.query<{ lat: number | null; lon: number | null }>('SELECT lat, lon FROM checkpoints WHERE id = $1 FOR UPDATE', [checkpointId])
        if (!cp) throw invalid(`checkpoint "${checkpointId}" does not exist`)
        const owner = await tagOwner(tx, tagId)
        if (owner === undefined) throw invalid(`tag "${tagId}" is not registered (checkpoint "${checkpointId}" does not have it)`)
        if (owner !== checkpointId) throw invalid(`tag "${tagId}" belongs to checkpoint "${owner}", not to checkpoint "${checkpointId}"`)
        const [{ n } = { n: 0 }] = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM checkpoint_tags WHERE checkpoint_id = $1', [checkpointId])
        if (n <= 1 && (cp.lat === null || cp.lon === null)) {
          throw invalid(`tag "${tagId}" is the last tag of checkpoint "${checkpointId}", which has no coordinates (no GPS geofence): add its replacement first`)
        }
        await tx.query('DELETE FROM checkpoint_tags WHERE tag_id = $1', [tagId])
        await tx.query(SYNC_FIRST_TAG, [checkpointId])
        return (await checkpointRow(tx, checkpointId)) as CheckpointRow
      })
    },
  }
}

export function deviceQueries(db: Queryable): Store['devices'] {
  return {
    async create(d) {
      const [row] = await db.query<DeviceRow>(
        `INSERT INTO devices (id, kind, vendor, grid_id, secret_hash) VALUES ($1, $2, $3, $4, $5) RETURNING ${DEVICE_COLS}`,
        [d.id, d.kind, d.vendor ?? null, d.gridId ?? null, d.secretHash],
      )
      return row as DeviceRow
    },
    async get(id) {
      return (await db.query<DeviceRow>(`SELECT ${DEVICE_COLS} FROM devices WHERE id = $1`, [id]))[0]
    },
    async getMany(ids) {
      const out = new Map<string, DeviceRow>()
      if (ids.length === 0) return out
      const rows = await db.query<DeviceRow>(`SELECT ${DEVICE_COLS} FROM devices WHERE id = ANY($1::text[])`, [[...new Set(ids)]])
      for (const r of rows) out.set(r.id, r)
      return out
    },
    async list(f = {}) {
      return db.query<DeviceRow>(
        `SELECT ${DEVICE_COLS} FROM devices WHERE ($1::text IS NULL OR grid_id = $1) AND ($2::text IS NULL OR kind = $2) ORDER BY id`,
        [f.gridId ?? null, f.kind ?? null],
      )
    },
    async rotateSecret(id, secretHash, atMs) {
      const rows = await db.query('UPDATE devices SET secret_hash = $2, rotated_at = to_timestamp($3::float8 / 1000) WHERE id = $1 RETURNING id', [
        id,
        secretHash,
        atMs,
      ])
      return rows.length > 0
    },
    async setDisabled(id, disabled) {
      return (await db.query('UPDATE devices SET disabled = $2 WHERE id = $1 RETURNING id', [id, disabled])).length > 0
    },
  }
}
