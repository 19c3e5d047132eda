// Starting the main job in tests: the environment of a local, ephemeral-port
// instance, and `gridpatrol start` as a child process (what an operator runs).
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const bin = fileURLToPath(new URL('../../bin/gridpatrol.js', import.meta.url))

/** Variables of an instance on 127.0.0.1 with every listener on an ephemeral port (add DATA_DIR, DATABASE_URL, …). */
export const LOCAL_EPHEMERAL = {
  GRIDPATROL_HOST: '127.0.0.1',
  GRIDPATROL_MQTT_PORT: '0',
  GRIDPATROL_WS_PORT: '0',
  GRIDPATROL_HTTP_PORT: '0',
} as const

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
