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

t.test('output piped into a reader that stops early (`| head`): exit 0, no EPIPE trace', async (t) => {
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, [bin, 'config', 'vars'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  child.stdout.once('data', () => child.stdout.destroy())
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)))
  t.equal(code, 0)
  t.notMatch(stderr, /EPIPE|Unhandled/)
})
