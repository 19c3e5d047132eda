import t from 'tap'
import { embeddedCli } from '../helpers/cli.ts'

t.test('grid and checkpoint input errors name the option, before the database is touched', async (t) => {
  const { gp, fails } = await embeddedCli(t, 'gp-cli-grid')
  const fail = async (args: string[]) => (await fails(...args)) ?? { code: 0, stderr: '' }

  let r = await fail(['grid', 'add', 'G9', '--level', 'community'])
  t.equal(r.code, 1)
  t.match(r.stderr, /--parent is required for a community grid/)
  r = await fail(['grid', 'add', 'D9', '--level', 'district', '--code', '12345'])
  t.match(r.stderr, /--code must be 15 digits/)
  r = await fail(['checkpoint', 'add', 'C9', '--grid', 'G9', '--lat', '91', '--lon', '0'])
  t.match(r.stderr, /--lat 91 is not a latitude/)
  // A valid hierarchy goes through, and a wrong parent level is named.
  await gp('grid', 'add', 'D9', '--level', 'district')
  r = await fail(['grid', 'add', 'G9', '--parent', 'D9'])
  t.match(r.stderr, /the parent of a community grid must be a street; "D9" is a district/)
})
