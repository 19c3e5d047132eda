// CPU time of a process from procfs, without the pinning side effect of bench/cpu.ts.
import { readFileSync } from 'node:fs'
import pg from 'pg'

/** utime + stime of a process in ms (USER_HZ = 100); NaN when it is gone. */
export const cpuMs = (pid: number | string): number => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100
  } catch {
    return NaN
  }
}

/**
 * CPU so far, per pid: this process (embedded: Node and PGlite) and, given the bench
 * database's URL, that database's server backends (the server runs on this machine).
 * CPU time is what the shared machine's load distorts least.
 */
export async function cpuSnapshot(dbUrl: string | undefined): Promise<Map<number, number>> {
  const u = process.cpuUsage()
  const m = new Map([[process.pid, (u.user + u.system) / 1000]])
  if (dbUrl) {
    const c = new pg.Client({ connectionString: dbUrl })
    await c.connect()
    const { rows } = await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()')
    await c.end()
    for (const r of rows) m.set(r.pid, cpuMs(r.pid) || 0)
  }
  return m
}

/** CPU seconds between two snapshots: Node's and the server's (backends that closed in between are not counted). */
export function cpuSince(a: Map<number, number>, b: Map<number, number>, dbUrl: string | undefined): string {
  const secs = (ms: number) => (ms / 1000).toFixed(2)
  let node = 0
  let db = 0
  for (const [pid, ms] of b) {
    if (pid === process.pid) node += ms - (a.get(pid) ?? 0)
    else db += ms - (a.get(pid) ?? 0)
  }
  return dbUrl ? `cpu ${secs(node + db)} s (node ${secs(node)} + server ${secs(db)})` : `cpu ${secs(node)} s`
}
