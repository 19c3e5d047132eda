// Starting the main job in tests: the environment of a local, ephemeral-port
// instance, and `gridpatrol start` as a child process (what an operator runs).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { loadConfig } from '../../src/config/index.ts'
import { start } from '../../src/main.ts'
import { makeTestDatabase } from './db.ts'

export const bin = fileURLToPath(new URL('../../bin/gridpatrol.js', import.meta.url))

/** Variables of an instance on 127.0.0.1 with every listener on an ephemeral port (add DATA_DIR, DATABASE_URL, …). */
export const LOCAL_EPHEMERAL = {
  GRIDPATROL_HOST: '127.0.0.1',
  GRIDPATROL_MQTT_PORT: '0',
  GRIDPATROL_WS_PORT: '0',
  GRIDPATROL_HTTP_PORT: '0',
} as const

/**
 * The main job in this process (rules off) on a temp data dir — embedded — or a throwaway
 * database on the DATABASE_URL server, every listener on an ephemeral port, plus `env`.
 * `cleanup` closes it and removes both; call it after closing what uses it.
 */
export async function startLocal(driver: 'embedded' | 'server', prefix: string, env: Record<string, string>): Promise<{ running: Awaited<ReturnType<typeof start>>; cleanup: () => Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), `${prefix}-`))
  const db = driver === 'server' ? await makeTestDatabase(prefix.replace(/\W/g, '_')) : undefined
  const config = loadConfig({ GRIDPATROL_DATA_DIR: dataDir, ...(db ? { DATABASE_URL: db.url } : {}), ...LOCAL_EPHEMERAL, ...env })
  const running = await start(config, pino({ level: 'silent' }), { rules: false })
  return {
    running,
    async cleanup() {
      await running.close()
      await db?.drop()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

export interface Started {
  child: ChildProcess
  ports: { mqtt: number; http: number }
  /** Every line it wrote so far (stdout and stderr). */
  logs: string[]
}

/** `gridpatrol start` with `env`; resolves at its "gridpatrol started" log line. */
export function startProcess(env: NodeJS.ProcessEnv): Promise<Started> {
  const child = spawn(process.execPath, [bin, 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const logs: string[] = []
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start within 60 s:\n${logs.join('')}`)), 60_000)
    let buf = ''
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString()
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        logs.push(line + '\n')
        try {
          const rec = JSON.parse(line) as { msg?: string; ports?: { mqtt: number; http: number } }
          if (rec.msg === 'gridpatrol started' && rec.ports) {
            clearTimeout(timer)
            resolve({ child, ports: rec.ports, logs })
          }
        } catch {
          // not JSON: keep it for the failure message
        }
      }
    })
    child.stderr!.on('data', (c: Buffer) => logs.push(c.toString()))
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`exited with ${code} before start:\n${logs.join('')}`))
    })
  })
}
