// A real pseudo-terminal pair from socat (it prints "N PTY is /dev/pts/X" twice),
// killed at the test's teardown: the serial tests' line.
import { spawn } from 'node:child_process'
import type { Test } from 'tap'

export async function ptyPair(t: Test): Promise<[string, string]> {
  const p = spawn('socat', ['-d', '-d', 'pty,raw,echo=0', 'pty,raw,echo=0'], { stdio: ['ignore', 'ignore', 'pipe'] })
  t.teardown(() => {
    p.kill()
  })
  const paths: string[] = []
  let buf = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socat gave no ptys: ${buf}`)), 5000)
    p.stderr.on('data', (c: Buffer) => {
      buf += c.toString()
      for (const m of buf.matchAll(/PTY is (\S+)/g)) if (!paths.includes(m[1]!)) paths.push(m[1]!)
      if (paths.length === 2 && /starting data transfer loop/.test(buf)) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  return [paths[0]!, paths[1]!]
}

declare global {
  // `Tap.Test` in test files' signatures (no import needed).
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Tap {
    type Test = import('tap').Test
  }
}
