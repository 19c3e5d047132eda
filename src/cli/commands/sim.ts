import { writeFileSync } from 'node:fs'
import type { Command } from 'commander'
import type { LiveOptions, startLiveFleet } from '../../../simulators/live.ts'
import type { Uplink } from '../../../firmware-protocol/index.ts'
import type { SensorMetric } from '../../../simulators/sensor.ts'
import { io, out } from '../io.ts'

const isTty = () => io().stdout.isTTY === true

function progress(line: string): void {
  if (isTty()) out(`\r${line.padEnd(100)}`)
}

interface ConnOpts {
  url: string
  device?: string
  username?: string
  secret?: string
  password?: string
  seed: string
  speed: string
  state?: string
}

function connection(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'broker URL (mqtt://, mqtts://, ws://)', 'mqtt://localhost:1883')
    .option('--device <id>', 'device id (= MQTT username and client id)')
    .option('--username <id>', 'alias of --device')
    .option('--secret <secret>', 'device secret (= MQTT password); default secret-{id}')
    .option('--password <secret>', 'alias of --secret')
    .option('--seed <n>', 'PRNG seed (runs are reproducible)', '1')
    .option('--speed <x>', 'simulated seconds per real second', '1')
    .option('--state <file>', 'JSON file keeping seq counters across runs')
}

function liveOpts(o: ConnOpts): LiveOptions {
  return { url: o.url, seed: Number(o.seed), speed: Number(o.speed), ...(o.state ? { stateFile: o.state } : {}) }
}

async function runLive(o: ConnOpts & { duration?: string }, start: (fleet: typeof startLiveFleet) => ReturnType<typeof startLiveFleet>): Promise<void> {
  // the simulators (mqtt.js, serial) are loaded by the commands that use them, not by every CLI command
  const { startLiveFleet } = await import('../../../simulators/live.ts')
  const live = start(startLiveFleet)
  const timer = setInterval(() => {
    const s = live.fleet.stats()
    progress(`online ${s.online}/${s.devices}  sent ${s.published}  acked ${s.acked}  backlog ${s.backlog}  sim ${new Date(live.clock.now()).toISOString()}`)
  }, 1000)
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve())
    if (o.duration) setTimeout(resolve, Number(o.duration) * 1000)
  })
  clearInterval(timer)
  await live.stop()
  const s = live.fleet.stats()
  out(`\n${JSON.stringify(s)}\n`)
}

export function registerSim(program: Command): void {
  const sim = program.command('sim').description('Simulated patrol devices and sensors (for tests, demos and vendors)')

  connection(sim.command('patrol'))
    .description('One patrol device on a real broker: checks in at generated checkpoints, heartbeats, answers commands')
    .option('--interval <s>', 'simulated seconds between check-ins', '60')
    .option('--duration <s>', 'stop after this many real seconds (default: until Ctrl-C)')
    .action(async (o: ConnOpts & { interval: string; duration?: string }) => {
      const id = o.device ?? o.username ?? 'patrol-001'
      await runLive(o, (startLiveFleet) => startLiveFleet(liveOpts(o), [{ deviceId: id, ...((o.secret ?? o.password) ? { secret: (o.secret ?? o.password)! } : {}), checkinEveryMs: Number(o.interval) * 1000 }]))
    })

  connection(sim.command('sensor'))
    .description('One component sensor on a real broker: periodic telemetry with noise')
    .option('--metric <m>', 'water_level | tilt | smoke | temperature', 'water_level')
    .option('--interval <s>', 'report interval, simulated seconds', '300')
    .option('--duration <s>', 'stop after this many real seconds')
    .action(async (o: ConnOpts & { metric: SensorMetric; interval: string; duration?: string }) => {
      const id = o.device ?? o.username ?? 'sensor-001'
      await runLive(o, (startLiveFleet) => startLiveFleet(liveOpts(o), [], [{ deviceId: id, ...((o.secret ?? o.password) ? { secret: (o.secret ?? o.password)! } : {}), metric: o.metric, reportIntervalS: Number(o.interval) }]))
    })

  connection(sim.command('fleet'))
    .description('Many patrol devices on a real broker (ids {prefix}0001…, secrets secret-{id})')
    .option('--count <n>', 'number of devices', '100')
    .option('--prefix <p>', 'device id prefix', 'patrol-')
    .option('--interval <s>', 'simulated seconds between check-ins per device', '60')
    .option('--duration <s>', 'stop after this many real seconds')
    .action(async (o: ConnOpts & { count: string; prefix: string; interval: string; duration?: string }) => {
      const n = Number(o.count)
      const specs = Array.from({ length: n }, (_, i) => ({ deviceId: `${o.prefix}${String(i + 1).padStart(4, '0')}`, checkinEveryMs: Number(o.interval) * 1000 }))
      await runLive(o, (startLiveFleet) => startLiveFleet(liveOpts(o), specs))
    })

  sim
    .command('scenario <file>')
    .description('Run a scenario on virtual time (a day in seconds) and write the ground truth JSON')
    .option('-o, --out <file>', 'ground-truth output file', 'ground-truth.json')
    .option('--seed <n>', 'override the scenario seed')
    .action(async (file: string, o: { out: string; seed?: string }) => {
      const [{ loadScenario }, { runScenario }] = await Promise.all([import('../../../simulators/scenario.ts'), import('../../../simulators/scenario-runner.ts')])
      const s = loadScenario(file)
      if (o.seed !== undefined) s.seed = Number(o.seed)
      const gt = await runScenario(s, { onProgress: (f, now) => progress(`${(f * 100).toFixed(0).padStart(3)}%  ${new Date(now).toISOString()}`) })
      writeFileSync(o.out, JSON.stringify(gt, null, 1))
      const cov = gt.coverage.map((c) => c.coveragePct ?? 100)
      out(`\n${s.name}: ${gt.visits.length} visits, ${gt.misses.length} misses, ${gt.gaps.length} gaps, ${gt.faults.length} faults; mean coverage ${(cov.reduce((a, b) => a + b, 0) / Math.max(1, cov.length)).toFixed(2)}% → ${o.out}\n`)
    })

  sim
    .command('dock')
    .description('Serial docking cradle: upload stored check-ins as framed protobuf over a serial port')
    .requiredOption('--port <path>', 'serial device, e.g. /dev/ttyUSB0')
    .option('--baud <n>', 'baud rate', '115200')
    .option('--device <id>', 'device id written into every envelope', 'patrol-001')
    .option('--count <n>', 'stored check-ins to upload', '20')
    .option('--first-seq <n>', 'seq of the first stored check-in', '1')
    .action(async (o: { port: string; baud: string; device: string; count: string; firstSeq: string }) => {
      const { openSerialDock } = await import('../../../simulators/serial-dock.ts')
      const dock = await openSerialDock({ path: o.port, baudRate: Number(o.baud) })
      const now = Date.now()
      const n = Number(o.count)
      const envs: Uplink[] = Array.from({ length: n }, (_, i) => ({ seq: Number(o.firstSeq) + i, deviceTimeMs: now - (n - i) * 60_000, kind: 'checkin', checkin: { tagId: `04DOCK${String(i).padStart(4, '0')}`, method: 'nfc' } }))
      const frames = await dock.upload(o.device, envs)
      await dock.close()
      out(`${frames} frames written to ${o.port}\n`)
    })
}
