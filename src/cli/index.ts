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

/** Builds the `gridpatrol` program; each command module adds itself. */
export function buildProgram(): Command {
  const program = new Command('gridpatrol')
    .description('Backend for city grid-management field hardware (patrol devices and sensors over MQTT)')
    .showHelpAfterError()
    .exitOverride()
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

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram()
  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode)
    if (err instanceof ConfigError) {
      process.stderr.write(`gridpatrol: ${err.message}\n`)
      process.exit(2)
    }
    process.stderr.write(`gridpatrol: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  }
}
