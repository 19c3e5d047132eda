// Where a command writes and which environment it reads. The `gridpatrol` process uses its
// own streams and environment; `run()` can be given others (tests run commands in-process,
// each with its own output, concurrently), kept per call with AsyncLocalStorage.
import { AsyncLocalStorage } from 'node:async_hooks'
import { resolve } from 'node:path'
import type { Config } from '../config/schema.ts'
import type { Store } from '../store/types.ts'

export interface CliIo {
  stdout: { write(chunk: string): unknown; isTTY?: boolean }
  stderr: { write(chunk: string): unknown }
  env: Record<string, string | undefined>
  /** Where relative file arguments are resolved (default: the process's working directory). */
  cwd?: string
  /**
   * An open, migrated store for the commands that use one, instead of opening the configured
   * one for the command and closing it after; the command does not close it.
   */
  store?: (config: Config) => Promise<Store>
  /** Set by a command that completed but failed (exitWith); run() returns it. */
  exitCode?: number
}

const processIo: CliIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  get env() {
    return process.env
  },
}

const current = new AsyncLocalStorage<CliIo>()

/** The running command's streams and environment. */
export function io(): CliIo {
  return current.getStore() ?? processIo
}

/** A file argument as a path (relative ones from the command's working directory). */
export function cliPath(file: string): string {
  return resolve(io().cwd ?? process.cwd(), file)
}

export function out(text: string): void {
  io().stdout.write(text)
}

export function err(text: string): void {
  io().stderr.write(text)
}

/** The command ends normally, its output written, with this exit status (e.g. a failed conformance run). */
export function exitWith(code: number): void {
  io().exitCode = code
}

export function withIo<T>(cliIo: CliIo, fn: () => T): T {
  return current.run(cliIo, fn)
}
