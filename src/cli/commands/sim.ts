import { writeFileSync } from 'node:fs'
import { InvalidArgumentError, Option, type Command } from 'commander'
import type { LiveOptions, startLiveFleet } from '../../../simulators/live.ts'
import type { Uplink } from '../../../firmware-protocol/index.ts'
import type { SensorMetric } from '../../../simulators/sensor.ts'
import { io, out } from '../io.ts'
import { num } from '../options.ts'

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
  seed: number
  speed: number
  state?: string
}

function tagList(v: string): string[] {
  const tags = v.split(',').map((x) => x.trim())
  const bad = tags.find((x) => x === '' || Buffer.byteLength(x) > 128)
  if (bad !== undefined) throw new InvalidArgumentError('--tags is a comma-separated list of tag ids of 1–128 bytes each.')
  return tags
}

function connection(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'broker URL (mqtt://, mqtts://, ws://)', 'mqtt://localhost:1883')
    .option('--device <id>', 'device id (= MQTT username and client id)')
    .option('--username <id>', 'alias of --device')
    .option('--secret <secret>', 'device secret (= MQTT password); default secret-{id}')
    .option('--password <secret>', 'alias of --secret')
    .option('--seed <n>', 'PRNG seed (runs are reproducible)', num('--seed', { min: 0, whole: true }), 1)
    .option('--speed <x>', "simulated seconds per real second (the device's clock runs as fast: above 1 the server sees a clock running ahead, flags and re-times its check-ins)", num('--speed'), 1)
    .option('--state <file>', 'JSON file keeping seq counters across runs')
}

function liveOpts(o: ConnOpts): LiveOptions {
  return { url: o.url, seed: o.seed, speed: o.speed, ...(o.state ? { stateFile: o.state } : {}) }
}

async function runLive(o: ConnOpts & { duration?: number }, start: (fleet: typeof startLiveFleet) => ReturnType<typeof startLiveFleet>): Promise<void> {
  // the simulators (mqtt.js, serial) are loaded by the commands that use them, not by every CLI command
  const { startLiveFleet } = await import('../../../simulators/live.ts')
  const live = start(startLiveFleet)
  const timer = setInterval(() => {
    const s = live.fleet.stats()
    progress(`online ${s.online}/${s.devices}  sent ${s.published}  acked ${s.acked}  backlog ${s.backlog}  sim ${new Date(live.clock.now()).toISOString()}`)
  }, 1000)
  // Ctrl-C, or a process manager's (or `timeout`'s) SIGTERM: disconnect cleanly, print the figures
  let stop = () => {}
  await new Promise<void>((resolve) => {
    stop = resolve
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    if (o.duration !== undefined) setTimeout(stop, o.duration * 1000)
  })
  process.off('SIGINT', stop)
  process.off('SIGTERM', stop)
  clearInterval(timer)
  await live.stop()
  const s = live.fleet.stats()
  out(`\n${JSON.stringify(s)}\n`)
}

export function registerSim(program: Command): void {
  const sim = program.command('sim').description('Simulated patrol devices and sensors (for tests, demos and vendors)')

  connection(sim.command('patrol'))
    .description('One patrol device on a real broker: checks in at checkpoints in turn (--tags, or generated ones), heartbeats, answers commands')
    .option('--tags <ids>', 'tag ids to read in turn, comma-separated: e.g. those registered with `checkpoint add --tag` (default: four generated demo checkpoints, one a GPS fix)', tagList)
    .option('--badge <id>', "the patroller's badge id, sent with each check-in")
    .option('--interval <s>', 'simulated seconds between check-ins', num('--interval'), 60)
    .option('--duration <s>', 'stop after this many real seconds (default: until Ctrl-C)', num('--duration'))
    .action(async (o: ConnOpts & { tags?: string[]; badge?: string; interval: number; duration?: number }) => {
      const id = o.device ?? o.username ?? 'patrol-001'
      const checkpoints = o.tags?.map((tagId, i) => ({ id: tagId, tagId, method: 'nfc' as const, lat: 31.23 + i * 0.0005, lon: 121.47 + i * 0.0004 }))
      await runLive(o, (startLiveFleet) =>
        startLiveFleet(liveOpts(o), [
          {
            deviceId: id,
            ...((o.secret ?? o.password) ? { secret: (o.secret ?? o.password)! } : {}),
            checkinEveryMs: o.interval * 1000,
            ...(checkpoints ? { checkpoints } : {}),
            ...(o.badge ? { badgeId: o.badge } : {}),
          },
        ]),
      )
    })

  connection(sim.command('sensor'))
    .description('One component sensor on a real broker: periodic telemetry with noise')
    .addOption(new Option('--metric <m>', 'what it measures').choices(['water_level', 'tilt', 'smoke', 'temperature']).default('water_level'))
    .option('--interval <s>', 'report interval, simulated seconds', num('--interval'), 300)
    .option('--duration <s>', 'stop after this many real seconds', num('--duration'))
    .action(async (o: ConnOpts & { metric: SensorMetric; interval: number; duration?: number }) => {
      const id = o.device ?? o.username ?? 'sensor-001'
      await runLive(o, (startLiveFleet) => startLiveFleet(liveOpts(o), [], [{ deviceId: id, ...((o.secret ?? o.password) ? { secret: (o.secret ?? o.password)! } : {}), metric: o.metric, reportIntervalS: o.interval }]))
    })

  connection(sim.command('fleet'))
    .description('Many patrol devices on a real broker (ids {prefix}0001…, secrets secret-{id})')
    .option('--count <n>', 'number of devices', num('--count', { whole: true }), 100)
    .option('--prefix <p>', 'device id prefix', 'patrol-')
    .option('--interval <s>', 'simulated seconds between check-ins per device', num('--interval'), 60)
    .option('--duration <s>', 'stop after this many real seconds', num('--duration'))
    .action(async (o: ConnOpts & { count: number; prefix: string; interval: number; duration?: number }) => {
      const n = o.count
      const specs = Array.from({ length: n }, (_, i) => ({ deviceId: `${o.prefix}${String(i + 1).padStart(4, '0')}`, checkinEveryMs: o.interval * 1000 }))
      await runLive(o, (startLiveFleet) => startLiveFleet(liveOpts(o), specs))
    })

  sim
    .command('scenario <file>')
    .description('Run a scenario on virtual time (a day in seconds) and write the ground truth JSON')
    .option('-o, --out <file>', 'ground-truth output file', 'ground-truth.json')
    .option('--seed <n>', 'override the scenario seed', num('--seed', { min: 0, whole: true }))
    .action(async (file: string, o: { out: string; seed?: number }) => {
      const [{ loadScenario }, { runScenario }] = await Promise.all([import('../../../simulators/scenario.ts'), import('../../../simulators/scenario-runner.ts')])
      const s = loadScenario(file)
      if (o.seed !== undefined) s.seed = o.seed
      const gt = await runScenario(s, { onProgress: (f, now) => progress(`${(f * 100).toFixed(0).padStart(3)}%  ${new Date(now).toISOString()}`) })
      writeFileSync(o.out, JSON.stringify(gt, null, 1))
      const cov = gt.coverage.map((c) => c.coveragePct ?? 100)
      out(`\n${s.name}: ${gt.visits.length} visits, ${gt.misses.length} misses, ${gt.gaps.length} gaps, ${gt.faults.length} faults; mean coverage ${(cov.reduce((a, b) => a + b, 0) / Math.max(1, cov.length)).toFixed(2)}% → ${o.out}\n`)
    })

  sim
    .command('dock')
    .description('Serial docking cradle: upload stored check-ins as framed protobuf over a serial port')
    .requiredOption('--port <path>', 'serial device, e.g. /dev/ttyUSB0')
    .option('--baud <n>', 'baud rate', num('--baud', { whole: true }), 115200)
    .option('--device <id>', 'device id written into every envelope', 'patrol-001')
    .option('--count <n>', 'stored check-ins to upload', num('--count', { whole: true }), 20)
    .option('--first-seq <n>', 'seq of the first stored check-in', num('--first-seq', { whole: true }), 1)
    .action(async (o: { port: string; baud: number; device: string; count: number; firstSeq: number }) => {
      const { openSerialDock } = await import('../../../simulators/serial-dock.ts')
      const dock = await openSerialDock({ path: o.port, baudRate: o.baud })
      const now = Date.now()
      const n = o.count
      const envs: Uplink[] = Array.from({ length: n }, (_, i) => ({ seq: o.firstSeq + i, deviceTimeMs: now - (n - i) * 60_000, kind: 'checkin', checkin: { tagId: `04DOCK${String(i).padStart(4, '0')}`, method: 'nfc' } }))
      const frames = await dock.upload(o.device, envs)
      await dock.close()
      out(`${frames} frames written to ${o.port}\n`)
    })
}
