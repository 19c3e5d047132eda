import type { Db, Queryable } from '../db.ts'
import type { PlanRow, PlanVersion, RulesRepositories } from '../rules-types.ts'

const PLAN_COLS = `grid_id AS "gridId", version, to_char(effective_from, 'YYYY-MM-DD') AS "effectiveFrom", plan,
  created_by AS "createdBy", created_at AS "createdAt"`

export function planQueries(db: Db): RulesRepositories['plans'] {
  return {
    put: (p) =>
      db.transaction(async (tx) => {
        // Serialise versions per grid: lock the grid row, then take max + 1.
        const grid = await tx.query('SELECT id FROM grids WHERE id = $1 FOR UPDATE', [p.gridId])
        if (grid.length === 0) throw new RangeError(`grid "${p.gridId}" does not exist`)
        const [row] = await tx.query<PlanRow>(
          `INSERT INTO patrol_plans (grid_id, version, effective_from, plan, created_by)
           SELECT $1, coalesce(max(version), 0) + 1, $2::date, $3::jsonb, $4 FROM patrol_plans WHERE grid_id = $1
           RETURNING ${PLAN_COLS}`,
          [p.gridId, p.effectiveFrom, JSON.stringify(p.plan), p.createdBy ?? null],
        )
        return row as PlanRow
      }),
    async list(gridId) {
      return db.query<PlanRow>(`SELECT ${PLAN_COLS} FROM patrol_plans WHERE grid_id = $1 ORDER BY version`, [gridId])
    },
    async versions() {
      return db.query<PlanVersion>(
        `SELECT grid_id AS "gridId", version, to_char(effective_from, 'YYYY-MM-DD') AS "effectiveFrom" FROM patrol_plans ORDER BY grid_id, version`,
      )
    },
    async getVersions(keys) {
      if (keys.length === 0) return []
      return db.query<PlanRow>(
        `SELECT ${PLAN_COLS} FROM patrol_plans JOIN unnest($1::text[], $2::int4[]) AS k(g, v) ON grid_id = k.g AND version = k.v
         ORDER BY grid_id, version`,
        [keys.map((k) => k.gridId), keys.map((k) => k.version)],
      )
    },
  }
}

export function rulesConfigQueries(db: Queryable): RulesRepositories['rulesConfig'] {
  return {
    async get(key) {
      return (await db.query<{ value: unknown }>('SELECT value FROM rules_config WHERE key = $1', [key]))[0]?.value
    },
    async set(key, value) {
      await db.query(
        `INSERT INTO rules_config (key, value) VALUES ($1, $2::jsonb)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
        [key, JSON.stringify(value)],
      )
    },
  }
}
