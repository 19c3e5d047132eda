import { Command, CommanderError } from 'commander'
import { ConfigError } from '../config/index.ts'
import { registerStart } from './commands/start.ts'
import { registerConfig } from './commands/config.ts'
import { registerSim } from './commands/sim.ts'
import { registerConformance } from './commands/conformance.ts'
import { registerDevice } from './commands/device.ts'
import { registerIngest } from './commands/ingest.ts'
import { registerMigrate } from './commands/migrate.ts'
import { registerReport } from './commands/report.ts'
import { registerCases } from './commands/cases.ts'
import { registerPlan } from './commands/plan.ts'
import { registerRules } from './commands/rules.ts'
import { registerCheckpoint, registerGrid } from './commands/grid.ts'
import { err, io, out, withIo, type CliIo } from './io.ts'
import { forwardCommand, HeldByServer } from './remote.ts'

/** Builds the `gridpatrol` program; each command module adds itself. */
export function buildProgram(): Command {
  const program = new Command('gridpatrol')
    .description('Backend for city grid-management field hardware (patrol devices and sensors over MQTT)')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: err })
  registerStart(program)
  registerConfig(program)
  registerSim(program)
  registerConformance(program)
  registerDevice(program)
  registerIngest(program)
  registerMigrate(program)
  registerReport(program)
  registerCases(program)
  registerPlan(program)
  registerRules(program)
  registerGrid(program)
  registerCheckpoint(program)
  return program
}

/**
 * Runs one command line (argv as in process.argv: node, script, args…) and gives its exit
 * status: 0, 1 (the command failed: its error on stderr) or 2 (bad configuration); commander's
 * own for usage errors. With `cliIo`, the command writes and reads there instead of the process's.
 */
export async function run(argv: string[], cliIo?: CliIo): Promise<number> {
  const go = async (): Promise<number> => {
    const program = buildProgram()
    try {
      await program.parseAsync(argv)
      return io().exitCode ?? 0
    } catch (e) {
      if (e instanceof CommanderError) return e.exitCode
      if (e instanceof HeldByServer) {
        try {
          return await forwardCommand(e.socketPath, argv.slice(2), e.held)
        } catch (f) {
          err(`gridpatrol: ${f instanceof Error ? f.message : String(f)}\n`)
          return 1
        }
      }
      if (e instanceof ConfigError) {
        err(`gridpatrol: ${e.message}\n`)
        return 2
      }
      err(`gridpatrol: ${e instanceof Error ? e.message : String(e)}\n`)
      return 1
    }
  }
  return cliIo ? withIo(cliIo, go) : go()
}

export async function main(argv: string[]): Promise<void> {
  // `gridpatrol cases list | head`: the reader has gone, so stop quietly as other Unix tools do.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e
    process.exit(0)
  })
  const code = await run(argv)
  if (code !== 0) process.exit(code)
}
