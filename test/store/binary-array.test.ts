// Binary array parameters (src/store/queries/binary-array.ts) on the embedded
// driver: every element type the group statement uses reads back exactly as the
// same values sent as JS arrays (PGlite's text path); bad values fail before the
// query with a class-22 SQLSTATE (the batcher's data-error test), and an element
// type other than the parameter's declared one is refused by the database.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { openPglite } from '../../src/store/drivers/pglite.ts'
import { binaryArray, type ElementType } from '../../src/store/queries/binary-array.ts'

const cases: Array<[ElementType, unknown[]]> = [
  ['text', ['bench-1', '', 'NULL', null, 'a"b\\c', 'x,y{z}', ' spaced ', '工号 7', 'e\u0301', '😀 ok', 'ß'.repeat(40), 'tail 工']],
  ['int8', [1, 0, -1, null, 2 ** 32, -(2 ** 32) - 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 4_294_967_295]],
  ['int4', [0, 1, -1, null, 2_147_483_647, -2_147_483_648]],
  ['smallint', [0, 80, -70, null, 32_767, -32_768]],
  ['float8', [0, 1.5, -2.25, null, 1e-300, 1.7e308, Date.UTC(2026, 0, 5) + 0.5, Number.NaN, Number.POSITIVE_INFINITY, 0.1 + 0.2]],
  ['real', [0, 3, 1.25, null, -7.5, 3700]],
  ['boolean', [true, false, null, true]],
]

t.test('embedded round trip', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gp-binarr-'))
  const { db } = await openPglite(dir)
  t.teardown(async () => {
    await db.close()
    await rm(dir, { recursive: true, force: true })
  })
  const read = (type: ElementType, param: unknown) =>
    db.query<{ v: string | null; o: number }>(`SELECT v::text AS v, o FROM unnest($1::${type}[]) WITH ORDINALITY AS u(v, o) ORDER BY o`, [param])
  for (const [type, values] of cases) {
    const viaText = await read(type, values)
    t.equal(viaText.length, values.length, `${type}: text path`)
    t.same(await read(type, binaryArray(values, (v) => v, type)), viaText, type)
    t.same(await read(type, binaryArray([], (v) => v, type)), [], `${type}: empty`)
  }
  // Row objects and a mapping function, as the group statement passes them.
  const rows = [{ id: 'd-1', n: 3 }, { id: 'd-2' }]
  t.same(await read('int8', binaryArray(rows, (r) => r.n, 'int8')), [{ v: '3', o: 1 }, { v: null, o: 2 }])
  // The declared type is checked against the element type in the data (array_recv).
  await t.rejects(read('int8', binaryArray([1, 2], (v) => v, 'int4')), { code: '42804' })
  // U+0000 cannot be stored in text: refused with a class-22 code, as on the text path.
  await t.rejects(read('text', binaryArray(['a\u0000b'], (v) => v, 'text')), { code: /^22/ })
})

t.test('values the column type cannot hold fail before the query, with a data-error SQLSTATE', async (t) => {
  const bad: Array<[ElementType, unknown, string]> = [
    ['int8', 2 ** 53, '22003'],
    ['int8', 1.5, '22P02'],
    ['int8', '12', '22P02'],
    ['int4', 2 ** 31, '22003'],
    ['smallint', 32_768, '22003'],
    ['smallint', 80.5, '22P02'],
    ['float8', '1.5', '22P02'],
    ['real', true, '22P02'],
    ['boolean', 1, '22P02'],
    ['text', 7, '22P02'],
  ]
  for (const [type, v, code] of bad) t.throws(() => binaryArray([v], (x) => x, type), { code, name: 'RangeError' }, `${type} ${String(v)}`)
})
