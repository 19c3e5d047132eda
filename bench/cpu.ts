// Shared by the benches: pin the bench process to CPU 1 and the system under
// test to CPU 0 (the 2-core machine), and read a process's CPU time.
import { execFileSync } from 'node:child_process'
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

export { cpuMs } from './proc-cpu.ts'
