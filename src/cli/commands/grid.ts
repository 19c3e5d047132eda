import { Command, InvalidArgumentError, Option } from 'commander'
import type { GridLevel } from '../../store/types.ts'
import { printTable, withStore } from '../with-store.ts'
import { isValidTimeZone } from '../../rules/tz.ts'
import { out } from '../io.ts'

const num = (what: string) => (v: string) => {
  const n = Number(v)
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`${what} must be a number`)
  return n
}

/** A tag id as devices read it; an empty one would match the empty tag of a GPS fix. */
const tagId = (v: string) => {
  if (v.trim() === '') throw new InvalidArgumentError('the tag id must not be empty')
  return v
}

export function registerGrid(program: Command): void {
  const grid = program.command('grid').description('Grids: district → street → community')
  grid
    .command('add')
    .description('Add a grid')
    .argument('<id>', 'grid id')
    .addOption(new Option('--level <level>', 'grid level').choices(['district', 'street', 'community']).default('community'))
    .option('--parent <id>', 'parent grid (required below district)')
    .option('--name <name>', 'name (default: the id)')
    .option('--code <digits>', 'standard 15-digit unit-grid code')
    .option('--time-zone <tz>', 'IANA time zone', 'Asia/Shanghai')
    .action(async (id: string, o: { level: GridLevel; parent?: string; name?: string; code?: string; timeZone: string }) => {
      if (o.level === 'district' && o.parent) throw new Error('a district grid has no --parent')
      if (o.level !== 'district' && !o.parent) throw new Error(`--parent is required for a ${o.level} grid (${o.level === 'street' ? 'a district' : 'a street'})`)
      if (o.code !== undefined && !/^[0-9]{15}$/.test(o.code))
        throw new Error('--code must be 15 digits (county admin code 6 + street 3 + community 3 + grid sequence 3)')
      if (!isValidTimeZone(o.timeZone)) throw new Error(`--time-zone "${o.timeZone}" is not an IANA time zone (e.g. Asia/Shanghai)`)
      const row = await withStore(async (store) => {
        if (await store.grids.get(id)) throw new Error(`grid "${id}" already exists`)
        const parent = o.parent ? await store.grids.get(o.parent) : undefined
        if (o.parent && !parent) throw new Error(`parent grid "${o.parent}" does not exist`)
        const expected = o.level === 'street' ? 'district' : 'street'
        if (parent && parent.level !== expected) throw new Error(`the parent of a ${o.level} grid must be a ${expected}; "${parent.id}" is a ${parent.level}`)
        return store.grids.create({ id, level: o.level, parentId: o.parent ?? null, name: o.name ?? id, standardCode: o.code ?? null, timeZone: o.timeZone })
      })
      out(`grid ${row.id} (${row.level}) added\n`)
    })
  grid
    .command('list')
    .description('List grids')
    .option('--parent <id>', 'only children of this grid')
    .option('--json', 'JSON output')
    .action(async (o: { parent?: string; json?: boolean }) => {
      const rows = await withStore((store) => store.grids.list(o.parent ? { parentId: o.parent } : {}))
      printTable(rows.map((g) => ({ id: g.id, level: g.level, parent: g.parentId, name: g.name, code: g.standardCode, timeZone: g.timeZone })), o.json === true)
    })
}

export function registerCheckpoint(program: Command): void {
  const cp = program.command('checkpoint').description('Checkpoints (NFC/RFID/iButton/QR tags, GPS geofences) of a grid')
  cp.command('add')
    .description('Add a checkpoint')
    .argument('<id>', 'checkpoint id')
    .requiredOption('--grid <gridId>', 'grid it belongs to')
    .option('--tag <tagId>', 'tag id the devices read (none for a GPS geofence; more: checkpoint tag add)', tagId)
    .option('--name <name>', 'name (default: the id)')
    .option('--lat <lat>', 'latitude', num('--lat'))
    .option('--lon <lon>', 'longitude', num('--lon'))
    .option('--radius <m>', 'geofence radius in metres', num('--radius'))
    .action(async (id: string, o: { grid: string; tag?: string; name?: string; lat?: number; lon?: number; radius?: number }) => {
      if ((o.lat === undefined) !== (o.lon === undefined)) throw new Error('--lat and --lon go together')
      if (o.lat !== undefined && (o.lat < -90 || o.lat > 90)) throw new Error(`--lat ${o.lat} is not a latitude in -90..90`)
      if (o.lon !== undefined && (o.lon < -180 || o.lon > 180)) throw new Error(`--lon ${o.lon} is not a longitude in -180..180`)
      if (o.radius !== undefined && !(o.radius > 0)) throw new Error('--radius must be more than 0 metres')
      if (o.tag === undefined && o.lat === undefined) throw new Error('a checkpoint needs a --tag, or --lat/--lon for a GPS geofence')
      const row = await withStore(async (store) => {
        if (!(await store.grids.get(o.grid))) throw new Error(`grid "${o.grid}" does not exist`)
        if (await store.checkpoints.get(id)) throw new Error(`checkpoint "${id}" already exists`)
        return store.checkpoints.create({ id, gridId: o.grid, tagId: o.tag ?? null, name: o.name ?? id, lat: o.lat ?? null, lon: o.lon ?? null, ...(o.radius ? { radiusM: o.radius } : {}) })
      })
      out(`checkpoint ${row.id} added to grid ${row.gridId}\n`)
    })
  cp.command('list')
    .description('List the checkpoints of a grid, with every tag each has (oldest first)')
    .requiredOption('--grid <gridId>', 'grid')
    .option('--json', 'JSON output')
    .action(async (o: { grid: string; json?: boolean }) => {
      const rows = await withStore((store) => store.checkpoints.listByGrid(o.grid))
      printTable(
        rows.map((c) => ({
          id: c.id,
          // the table: every tag in one cell; JSON: the first (`tag`, as before) and the list
          ...(o.json === true ? { tag: c.tagId, tags: c.tagIds } : { tags: c.tagIds.length > 0 ? c.tagIds.join(',') : null }),
          name: c.name,
          lat: c.lat,
          lon: c.lon,
          radiusM: c.radiusM,
        })),
        o.json === true,
      )
    })

  // Several tags per checkpoint: a post with a tag on each side, a damaged tag replaced.
  const tag = cp.command('tag').description("A checkpoint's tags: add a replacement or second tag, remove one")
  tag
    .command('add')
    .description('Register one more tag to a checkpoint; its other tags keep working (a tag belongs to one checkpoint)')
    .argument('<checkpoint>', 'checkpoint id')
    .requiredOption('--tag <tagId>', 'tag id the devices read', tagId)
    .action(async (id: string, o: { tag: string }) => {
      const r = await withStore((store) => store.checkpoints.addTag(id, o.tag))
      out(`${r.added ? `tag ${o.tag} added to checkpoint ${id}` : `checkpoint ${id} already has tag ${o.tag}`}; its tags: ${r.checkpoint.tagIds.join(', ')}\n`)
    })
  tag
    .command('remove')
    .description("Unregister a tag from a checkpoint: its check-ins are unknown tags from then on (a checkpoint without coordinates keeps at least one)")
    .argument('<checkpoint>', 'checkpoint id')
    .requiredOption('--tag <tagId>', 'tag id', tagId)
    .action(async (id: string, o: { tag: string }) => {
      const row = await withStore((store) => store.checkpoints.removeTag(id, o.tag))
      out(`tag ${o.tag} removed from checkpoint ${id}; its tags: ${row.tagIds.length > 0 ? row.tagIds.join(', ') : '(none: a GPS geofence)'}\n`)
    })
}
