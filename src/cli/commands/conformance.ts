import type { Command } from 'commander'
import { err, exitWith, out } from '../io.ts'
import { num } from '../options.ts'

export function registerConformance(program: Command): void {
  program
    .command('conformance')
    .description('Vendor conformance kit: a test broker your device connects to; checks every frame against PROTOCOL.md (the report names each rule)')
    .requiredOption('--device <id>', 'the device id the device will log in with (username = client id)')
    .requiredOption('--secret <secret>', 'the device secret (MQTT password)')
    .option('--port <n>', 'TCP port to listen on (0: any free one, printed)', num('--port', { min: 0, whole: true }), 1884)
    .option('--host <addr>', 'address to listen on', '0.0.0.0')
    .option('--expect <kinds>', 'uplink kinds the device must publish, comma-separated', 'checkin,status')
    .option('--connect-timeout <s>', 'seconds to wait for the device to connect', num('--connect-timeout'), 120)
    .option('--phase-timeout <s>', 'seconds each waiting step may take', num('--phase-timeout'), 60)
    .option('--offline <s>', 'seconds the kit refuses reconnects in the store-and-forward step', num('--offline'), 20)
    .option('--skip-offline', 'skip the offline/batch step')
    .option('--json', 'print the report as JSON (for CI)')
    .action(async (o: { device: string; secret: string; port: number; host: string; expect: string; connectTimeout: number; phaseTimeout: number; offline: number; skipOffline?: boolean; json?: boolean }) => {
      const { formatReport, runConformance } = await import('../../../simulators/conformance/index.ts')
      const report = await runConformance({
        deviceId: o.device,
        secret: o.secret,
        port: o.port,
        host: o.host,
        expectKinds: o.expect.split(',').filter(Boolean),
        connectTimeoutMs: o.connectTimeout * 1000,
        phaseTimeoutMs: o.phaseTimeout * 1000,
        offlineMs: o.offline * 1000,
        skipOffline: o.skipOffline === true,
        ...(o.json ? {} : { log: (l: string) => err(`${l}\n`) }),
      })
      out(o.json ? `${JSON.stringify(report, null, 1)}\n` : `${formatReport(report)}\n`)
      if (!report.passed) exitWith(1)
    })
}
