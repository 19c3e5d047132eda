#!/usr/bin/env node
// Runs the tap suite and closes with the plain `N passed, N failed` line CI reads.
// Arguments are passed to tap (e.g. `node test/run.js test/broker`).
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const tapBin = fileURLToPath(new URL('../node_modules/tap/dist/esm/run.mjs', import.meta.url))
const args = process.argv.slice(2)
const child = spawn(process.execPath, [tapBin, '--reporter=tap', '--no-color', ...args], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, FORCE_COLOR: '0' },
})

let passed = 0
let failed = 0
let tail = ''
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  tail = (tail + chunk.toString()).slice(-4096)
})
child.on('close', (code, signal) => {
  // tap's closing summary: `# { total: 12, pass: 11, fail: 1, skip: 0 }`
  const m = /#\s*\{\s*total:\s*(\d+)([^}]*)\}/.exec(tail)
  if (m) {
    const field = (name) => Number((new RegExp(`${name}:\\s*(\\d+)`).exec(m[2] ?? '') ?? [])[1] ?? 0)
    passed = field('pass')
    failed = field('fail')
  }
  const ok = code === 0 && failed === 0 && signal === null
  if (!ok && failed === 0) failed = 1 // the runner itself failed (crash, timeout, no summary)
  console.log(`${passed} passed, ${failed} failed`)
  process.exit(ok ? 0 : 1)
})
