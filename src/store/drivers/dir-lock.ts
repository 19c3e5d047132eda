import { readFile, unlink, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'

/** The data directory is held by another process, or already open in this one. */
export class DataDirInUseError extends Error {
  constructor(
    message: string,
    readonly dataDir: string,
    /** The holder's pid (this process's own when it holds the directory already). */
    readonly pid: number,
  ) {
    super(message)
    this.name = 'DataDirInUseError'
  }
}

/** Directories this process holds (a second open in the same process is refused too). */
const held = new Set<string>()

/**
 * One process per embedded data directory: PGlite has no locking of its own and
 * two instances on one directory corrupt it. The lock file holds the owner's pid;
 * a lock whose process is gone (kill -9, power cut) is taken over.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const path = join(dataDir, 'gridpatrol.lock')
  const key = resolve(dataDir)
  if (held.has(key)) throw new DataDirInUseError(`the data directory ${dataDir} is already open in this process`, dataDir, process.pid)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' })
      held.add(key)
      return async () => {
        held.delete(key)
        await unlink(path).catch(() => undefined)
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim())
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new DataDirInUseError(
          `the data directory ${dataDir} is in use by another gridpatrol process (pid ${owner}); ` +
            'stop it first, or use a server database (DATABASE_URL) to run several processes',
          dataDir,
          owner,
        )
      }
      await unlink(path).catch(() => undefined) // stale: its process is gone
    }
  }
  throw new Error(`could not lock the data directory ${dataDir}`)
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
