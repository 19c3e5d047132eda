import { Command, InvalidArgumentError, Option } from 'commander'
import type { GridLevel } from '../../store/types.ts'
import { printTable, withStore } from '../with-store.ts'

const num = (what: string) => (v: string) => {
  const n = Number(v)
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`${what} must be a number`)
  return n
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
      const row = await withStore(async (store) => {
        if (await store.grids.get(id)) throw new Error(`grid "${id}" already exists`)
        if (o.parent && !(await store.grids.get(o.parent))) throw new Error(`parent grid "${o.parent}" does not exist`)
        return store.grids.create({ id, level: o.level, parentId: o.parent ?? null, name: o.name ?? id, standardCode: o.code ?? null, timeZone: o.timeZone })
      })
      process.stdout.write(`grid ${row.id} (${row.level}) added\n`)
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
    .option('--tag <tagId>', 'tag id the devices read (none for a GPS geofence)')
    .option('--name <name>', 'name (default: the id)')
    .option('--lat <lat>', 'latitude', num('--lat'))
    .option('--lon <lon>', 'longitude', num('--lon'))
    .option('--radius <m>', 'geofence radius in metres', num('--radius'))
    .action(async (id: string, o: { grid: string; tag?: string; name?: string; lat?: number; lon?: number; radius?: number }) => {
      const row = await withStore(async (store) => {
        if (!(await store.grids.get(o.grid))) throw new Error(`grid "${o.grid}" does not exist`)
        if (await store.checkpoints.get(id)) throw new Error(`checkpoint "${id}" already exists`)
        return store.checkpoints.create({ id, gridId: o.grid, tagId: o.tag ?? null, name: o.name ?? id, lat: o.lat ?? null, lon: o.lon ?? null, ...(o.radius ? { radiusM: o.radius } : {}) })
      })
      process.stdout.write(`checkpoint ${row.id} added to grid ${row.gridId}\n`)
    })
  cp.command('list')
    .description('List the checkpoints of a grid')
    .requiredOption('--grid <gridId>', 'grid')
    .option('--json', 'JSON output')
    .action(async (o: { grid: string; json?: boolean }) => {
      const rows = await withStore((store) => store.checkpoints.listByGrid(o.grid))
      printTable(rows.map((c) => ({ id: c.id, tag: c.tagId, name: c.name, lat: c.lat, lon: c.lon, radiusM: c.radiusM })), o.json === true)
    })
}
