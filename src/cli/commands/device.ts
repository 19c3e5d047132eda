import { Command, InvalidArgumentError, Option } from 'commander'
import { isValidDeviceId } from '../../../firmware-protocol/index.ts'
import { printTable, withStore } from '../with-store.ts'
import { out, err } from '../io.ts'

const deviceId = (v: string) => {
  if (!isValidDeviceId(v)) throw new InvalidArgumentError('a device id is 1-64 characters of A-Z a-z 0-9 _ -')
  return v
}

function printSecret(id: string, secret: string): void {
  // The only time the secret is visible: only its scrypt hash is stored.
  out(`device ${id}\nsecret ${secret}\n`)
  err('Store this secret now: it is not kept and cannot be shown again (rotate-secret issues a new one).\n')
}

export function registerDevice(program: Command): void {
  const device = program.command('device').description('Register and manage devices and service accounts (MQTT credentials)')

  device
    .command('add')
    .description('Register a device; prints its secret exactly once')
    .argument('<id>', 'device id (MQTT username and client id)', deviceId)
    .addOption(new Option('--kind <kind>', 'patrol device, sensor, or a service account (external ingest/monitoring)').choices(['patrol', 'sensor', 'service']).default('patrol'))
    .option('--vendor <vendor>', 'hardware vendor')
    .option('--grid <gridId>', 'grid the device is assigned to')
    .action(async (id: string, o: { kind: 'patrol' | 'sensor' | 'service'; vendor?: string; grid?: string }) => {
      const { generateSecret, hashSecret } = await import('../../../broker/index.ts') // the broker's code: loaded only when a secret is made
      const secret = generateSecret()
      await withStore(async (store) => {
        if (await store.devices.get(id)) throw new Error(`device "${id}" already exists (use rotate-secret for a new secret)`)
        if (o.grid && !(await store.grids.get(o.grid))) throw new Error(`grid "${o.grid}" does not exist`)
        await store.devices.create({ id, kind: o.kind, vendor: o.vendor ?? null, gridId: o.grid ?? null, secretHash: await hashSecret(secret) })
      })
      printSecret(id, secret)
    })

  device
    .command('list')
    .description('List registered devices (never their secrets): state, battery, and the latest clock offset measured (seconds ahead +, behind −)')
    .option('--grid <gridId>', 'only devices assigned to this grid')
    .addOption(new Option('--kind <kind>', 'only this kind').choices(['patrol', 'sensor', 'service']))
    .option('--json', 'JSON output')
    .action(async (o: { grid?: string; kind?: 'patrol' | 'sensor' | 'service'; json?: boolean }) => {
      const rows = await withStore(async (store) => {
        const [devices, states] = await Promise.all([
          store.devices.list({ ...(o.grid ? { gridId: o.grid } : {}), ...(o.kind ? { kind: o.kind } : {}) }),
          store.devicesState.list(),
        ])
        const state = new Map(states.map((s) => [s.deviceId, s]))
        // The latest clock estimate (PROTOCOL.md §6): seconds the device's clock is ahead (+) or behind (−).
        const clocks = new Map((await store.clock.latestOf(devices.map((d) => d.id))).map((e) => [e.deviceId, e]))
        return devices.map((d) => ({
          id: d.id,
          kind: d.kind,
          vendor: d.vendor,
          grid: d.gridId,
          disabled: d.disabled,
          online: state.get(d.id)?.online ?? null,
          lastSeen: state.get(d.id)?.lastSeenAt ?? null,
          battery: state.get(d.id)?.batteryPct ?? null,
          clockOffsetS: clocks.has(d.id) ? Math.round(clocks.get(d.id)!.offsetMs / 100) / 10 : null,
          clockMeasured: clocks.get(d.id)?.measuredAt ?? null,
        }))
      })
      printTable(rows, o.json === true)
    })

  for (const [name, disabled] of [['disable', true], ['enable', false]] as const) {
    device
      .command(name)
      .description(disabled ? 'Refuse the device from now on; a running gridpatrol disconnects it within GRIDPATROL_REVOKE_CHECK_MS' : 'Allow a disabled device again')
      .argument('<id>', 'device id', deviceId)
      .action(async (id: string) => {
        const ok = await withStore((store) => store.devices.setDisabled(id, disabled))
        if (!ok) throw new Error(`device "${id}" does not exist`)
        out(`device ${id} ${disabled ? 'disabled' : 'enabled'}\n`)
      })
  }

  device
    .command('rotate-secret')
    .description('Issue a new secret (printed once); the old one stops working, and a running gridpatrol disconnects a session opened with it within GRIDPATROL_REVOKE_CHECK_MS')
    .argument('<id>', 'device id', deviceId)
    .action(async (id: string) => {
      const { generateSecret, hashSecret } = await import('../../../broker/index.ts') // the broker's code: loaded only when a secret is made
      const secret = generateSecret()
      const hash = await hashSecret(secret)
      const ok = await withStore((store) => store.devices.rotateSecret(id, hash, Date.now()))
      if (!ok) throw new Error(`device "${id}" does not exist`)
      printSecret(id, secret)
    })
}
