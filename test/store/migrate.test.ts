import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { appliesTo, loadMigrations, MIGRATIONS_DIR } from '../../src/store/migrate.ts'

async function dirWith(t: { teardown(fn: () => unknown): void }, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gp-mig-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  for (const [name, sql] of Object.entries(files)) await writeFile(join(dir, name), sql)
  return dir
}

t.test('picks up every NNN-name.sql in version order, with its flavour', async (t) => {
  const dir = await dirWith(t, {
    '010-later.sql': 'SELECT 1;',
    '002-ts.sql': '-- @when timescaledb\nSELECT 1;',
    '001-first.sql': '-- a comment\nSELECT 1;',
    '003-view.sql': '-- @when no-tsl\nSELECT 1;',
    'README.md': 'not a migration',
    '4-bad.sql': 'ignored: not NNN-',
  })
  const m = await loadMigrations(dir)
  t.same(
    m.map((x) => [x.version, x.name, x.when]),
    [
      [1, 'first', 'always'],
      [2, 'ts', 'timescaledb'],
      [3, 'view', 'no-tsl'],
      [10, 'later', 'always'],
    ],
  )
})

t.test('two files with one version are refused', async (t) => {
  const dir = await dirWith(t, { '001-a.sql': 'SELECT 1;', '001-b.sql': 'SELECT 1;' })
  await t.rejects(loadMigrations(dir), { code: 'GP_STORE_MIGRATION' })
})

t.test('flavours', async (t) => {
  const plain = { timescale: false, tsl: false }
  const embedded = { timescale: true, tsl: false }
  const server = { timescale: true, tsl: true }
  t.same(['always', 'timescaledb', 'tsl', 'no-tsl', 'plain'].map((w) => appliesTo(w as never, plain)), [true, false, false, true, true])
  t.same(['always', 'timescaledb', 'tsl', 'no-tsl', 'plain'].map((w) => appliesTo(w as never, embedded)), [true, true, false, true, false])
  t.same(['always', 'timescaledb', 'tsl', 'no-tsl', 'plain'].map((w) => appliesTo(w as never, server)), [true, true, true, false, false])
})

t.test('the shipped migrations parse', async (t) => {
  const m = await loadMigrations(MIGRATIONS_DIR)
  t.ok(m.length >= 5)
  t.equal(m[0]?.name, 'core')
})
