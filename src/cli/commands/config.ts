import type { Command } from 'commander'
import { describeEnv, loadConfig } from '../../config/index.ts'
import { io, out } from '../io.ts'

export function registerConfig(program: Command): void {
  const cmd = program.command('config').description('Show or check the configuration read from the environment')
  cmd
    .command('vars')
    .description('List every environment variable with its default and meaning')
    .action(() => {
      for (const v of describeEnv()) {
        out(`${v.name}${v.default ? ` (default ${v.default})` : ''}\n    ${v.description}\n`)
      }
    })
  cmd
    .command('check')
    .description('Validate the current environment; lists every bad variable at once')
    .action(() => {
      const c = loadConfig(io().env)
      out(`configuration OK (${c.databaseUrl ? 'server database' : `embedded database in ${c.dataDir}`})\n`)
    })
}
