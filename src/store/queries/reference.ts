import type { Queryable } from '../db.ts'
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

export function checkpointQueries(db: Queryable): Store['checkpoints'] {
  return {
    async create(c) {
      const [row] = await db.query<CheckpointRow>(
        `INSERT INTO checkpoints (id, grid_id, tag_id, name, lat, lon, radius_m)
         VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, 30)) RETURNING ${CHECKPOINT_COLS}`,
        [c.id, c.gridId, c.tagId, c.name, c.lat ?? null, c.lon ?? null, c.radiusM ?? null],
      )
      return row as CheckpointRow
    },
    async get(id) {
      return (await db.query<CheckpointRow>(`SELECT ${CHECKPOINT_COLS} FROM checkpoints WHERE id = $1`, [id]))[0]
    },
    async listByGrid(gridId) {
      return db.query<CheckpointRow>(`SELECT ${CHECKPOINT_COLS} FROM checkpoints WHERE grid_id = $1 ORDER BY id`, [gridId])
    },
    async byTags(tagIds) {
      const out = new Map<string, { checkpointId: string; gridId: string }>()
      if (tagIds.length === 0) return out
      const rows = await db.query<{ tagId: string; id: string; gridId: string }>(
        'SELECT tag_id AS "tagId", id, grid_id AS "gridId" FROM checkpoints WHERE tag_id = ANY($1::text[])',
        [[...new Set(tagIds)]],
      )
      for (const r of rows) out.set(r.tagId, { checkpointId: r.id, gridId: r.gridId })
      return out
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
