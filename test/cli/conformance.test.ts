// `gridpatrol conformance` as a command: a failed run prints its report and exits 1 (here: no
// device ever connects); bad numbers are refused naming the flag. The kit's rules themselves:
// test/simulators/conformance.test.ts.
import t from 'tap'
import { runCli } from '../helpers/cli.ts'

const gp = (...args: string[]) => runCli(args, { env: {} })

t.test('a failed run: its report, exit 1', async (t) => {
  const r = await gp('conformance', '--device', 'kit-dev', '--secret', 'kit-secret', '--host', '127.0.0.1', '--port', '0', '--connect-timeout', '1', '--json')
  t.equal(r.code, 1)
  const report = JSON.parse(r.stdout) as { passed: boolean; rules: Array<{ id: string; status: string }> }
  t.equal(report.passed, false)
  t.ok(report.rules.some((x) => x.status === 'fail'), 'a rule failed')
})

t.test('bad numbers refused naming the flag', async (t) => {
  for (const [flag, value, why] of [
    ['--port', '70000x', /--port must be a whole number ≥ 0/],
    ['--connect-timeout', '0', /--connect-timeout must be a number > 0/],
    ['--offline', 'long', /--offline must be a number > 0/],
  ] as const) {
    const r = await gp('conformance', '--device', 'kit-dev', '--secret', 'kit-secret', flag, value)
    t.not(r.code, 0)
    t.match(r.stderr, why)
  }
})
