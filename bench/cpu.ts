// Shared by the benches: pin the bench process to CPU 1 and the system under
// test to CPU 0 (the 2-core machine), and read a process's CPU time.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'

/** True when this process was pinned to CPU 1 (unpinned on 1 core or without taskset). */
export const pinned = (() => {
  if (availableParallelism() < 2) return false
  try {
    execFileSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

/** The command line that runs `cmd` on CPU 0 when pinning is on. */
export const pin = (cmd: string, args: string[]): [string, string[]] => (pinned ? ['taskset', ['-c', '0', cmd, ...args]] : [cmd, args])

/** utime + stime of a process in ms (USER_HZ = 100); NaN when it is gone. */
export const cpuMs = (pid: number | string): number => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100
  } catch {
    return NaN
  }
}
