import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'

const run = promisify(execFile)
const bin = fileURLToPath(new URL('../../bin/gridpatrol.js', import.meta.url))

t.test('gridpatrol --help lists the commands', async (t) => {
  const { stdout } = await run(process.execPath, [bin, '--help'])
  t.match(stdout, /Usage: gridpatrol/)
  t.match(stdout, /start/)
  t.match(stdout, /config/)
})

t.test('a bad environment fails start-up naming every bad variable, exit 2', async (t) => {
  const err = await run(process.execPath, [bin, 'config', 'check'], {
    env: { ...process.env, GRIDPATROL_MQTT_PORT: 'x', DATABASE_URL: 'nope' },
  }).then(
    () => undefined,
    (e: { code: number; stderr: string }) => e,
  )
  t.ok(err, 'fails')
  t.equal(err?.code, 2)
  t.match(err?.stderr, /GRIDPATROL_MQTT_PORT/)
  t.match(err?.stderr, /DATABASE_URL/)
})

t.test('an unknown command is refused with help', async (t) => {
  const err = await run(process.execPath, [bin, 'frobnicate']).then(
    () => undefined,
    (e: { code: number; stderr: string }) => e,
  )
  t.ok(err)
  t.not(err?.code, 0)
  t.match(err?.stderr, /unknown command/)
})
