// The generated protobuf code: imports under plain Node ESM (no tsx, no loader),
// and is not stale against the .proto files.
import t from 'tap'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../../', import.meta.url))
// tap runs tests with loaders in NODE_OPTIONS; the child must have none.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS'))

t.test('generated/gridpatrol.js imports under plain Node ESM', async (t) => {
  const code = `import('./firmware-protocol/generated/gridpatrol.js').then((m) => {
    const u = m.gridpatrol.v1.Uplink
    const bytes = u.encode({ seq: 1, deviceTimeMs: 1768464000000, checkIn: { tagId: 'A1', method: 1 } }).finish()
    const back = u.decode(bytes)
    console.log(JSON.stringify({ kinds: Object.keys(m.gridpatrol.v1).sort(), body: back.body, tag: back.checkIn.tagId }))
  })`
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], { cwd: root, env })
  const out = JSON.parse(stdout) as { kinds: string[]; body: string; tag: string }
  for (const k of ['Uplink', 'CheckIn', 'Telemetry', 'Status', 'Alarm', 'Batch', 'CommandAck', 'Command', 'TimeSync', 'ConfigUpdate', 'Ping', 'GeoFix', 'ReadMethod', 'AlarmKind', 'AckStatus'])
    t.ok(out.kinds.includes(k), k)
  t.equal(out.body, 'checkIn')
  t.equal(out.tag, 'A1')
})

t.test('gen-proto.js --check: generated/ matches the .proto files', async (t) => {
  const { stdout, stderr } = await run(process.execPath, ['firmware-protocol/scripts/gen-proto.js', '--check'], { cwd: root, env }).catch((e: { stdout: string; stderr: string; code: number }) => {
    t.fail(`gen-proto --check exited ${e.code}: ${e.stderr}`)
    return e
  })
  t.notMatch(stderr, /stale/, stdout)
})
