// A docking cradle on a real serial line (a socat pty) into the running process
// (src/main.ts with GRIDPATROL_SERIAL_PORTS): the dock's check-ins land once each,
// also when it uploads the same buffer twice; a frame naming no device, one that
// does not decode, and one from an unregistered device are rejects, byte for
// byte; line noise is counted in /metrics. Both drivers.
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { encodeFrame, encodeUplink, type Uplink } from '../../firmware-protocol/index.ts'
import { hashSecret, generateSecret } from '../../broker/index.ts'
import { openSerialDock } from '../../simulators/serial-dock.ts'
import { loadConfig } from '../../src/config/index.ts'
import { start } from '../../src/main.ts'
import { LOCAL_EPHEMERAL, startLocal } from '../helpers/app.ts'
import { ptyPair } from '../helpers/pty.ts'
import { drivers } from '../rules/store/open.ts'

const log = pino({ level: 'silent' })
const T0 = Date.UTC(2026, 11, 7, 1)
const checkIns = (n: number): Uplink[] =>
  Array.from({ length: n }, (_, i) => ({ seq: i + 1, deviceTimeMs: T0 + i * 60_000, kind: 'checkin', checkin: { tagId: `04DD${String(i).padStart(4, '0')}`, method: 'nfc' } }) as Uplink)

async function until(what: string, ok: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

for (const driver of drivers()) {
  t.test(`${driver}: a dock's upload over a serial line is stored once; unattributable frames are rejects`, async (t) => {
    const [dockSide, gatewaySide] = await ptyPair(t)
    const { running, cleanup } = await startLocal(driver, 'gp_serial', { GRIDPATROL_SERIAL_PORTS: `${gatewaySide}@115200` })
    const dock = await openSerialDock({ path: dockSide })
    t.teardown(async () => {
      await dock.close()
      await cleanup()
    })
    const { store } = running
    await store.devices.create({ id: 'dock-007', kind: 'patrol', secretHash: await hashSecret(generateSecret()) })

    await dock.upload('dock-007', checkIns(30))
    await dock.writeRaw(Buffer.from('AT+RESET\r\n\x00')) // line noise: dropped and counted
    const anonymous = encodeFrame(encodeUplink(checkIns(1)[0]!)) // no device_id
    const garbage = Buffer.from('not protobuf at all')
    const stranger = encodeFrame(encodeUplink({ ...checkIns(1)[0]!, deviceId: 'not-registered' }))
    await dock.writeRaw(Buffer.concat([Buffer.from([0]), anonymous, Buffer.from([0]), encodeFrame(garbage), Buffer.from([0]), stranger]))
    // The dock was not told what was committed, so it uploads its buffer again: no second row.
    await dock.upload('dock-007', checkIns(30))

    await until('30 check-ins and 3 rejects', async () => (await store.checkIns.count({ deviceId: 'dock-007' })) === 30 && (await store.rejects.list()).length === 3)
    await new Promise((r) => setTimeout(r, 300)) // the re-upload settles
    t.equal(await store.checkIns.count({ deviceId: 'dock-007' }), 30, 'each check-in once')
    const rows = await store.checkIns.list({ deviceId: 'dock-007', from: new Date(T0 - 1), to: new Date(T0 + 86_400_000) })
    t.same(rows.map((r) => r.seq).sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i + 1))

    const rejects = await store.rejects.list()
    const byCode = new Map(rejects.map((r) => [r.code, r]))
    t.same([...byCode.keys()].sort(), ['GP_INGEST_UNKNOWN_DEVICE', 'GP_PROTO_DECODE', 'GP_SERIAL_NO_DEVICE_ID'].sort(), 'three rejects with their reasons')
    t.equal(byCode.get('GP_SERIAL_NO_DEVICE_ID')?.topic, `serial:${gatewaySide}`, 'the line is named')
    t.same(Buffer.from(byCode.get('GP_SERIAL_NO_DEVICE_ID')!.payload), Buffer.from(encodeUplink(checkIns(1)[0]!)), 'stored byte for byte')
    t.same(Buffer.from(byCode.get('GP_PROTO_DECODE')!.payload), garbage, 'garbage stored byte for byte')

    const metrics = await (await fetch(`http://127.0.0.1:${running.ports.http}/metrics`)).text()
    t.match(metrics, /gridpatrol_serial_frames_dropped_total\{[^}]*\} [1-9]/, 'line noise counted')
  })
}

t.test('a serial line that cannot be opened stops the start with its name', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'gp-serial-bad-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const config = loadConfig({
    GRIDPATROL_DATA_DIR: dataDir,
    DATABASE_URL: undefined,
    ...LOCAL_EPHEMERAL,
    GRIDPATROL_SERIAL_PORTS: '/dev/gp-no-such-tty',
  })
  await t.rejects(start(config, log, { rules: false }), /serial line \/dev\/gp-no-such-tty \(GRIDPATROL_SERIAL_PORTS\)/)
  t.throws(() => loadConfig({ GRIDPATROL_SERIAL_PORTS: '/dev/ttyUSB0@fast' }), /\/dev\/ttyUSB0@fast.*PATH@BAUD/)
})
