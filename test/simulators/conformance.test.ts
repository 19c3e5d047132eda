import t from 'tap'
import { runConformance, formatReport, type ConformanceReport } from '../../simulators/conformance/index.ts'
import type { DeviceQuirks } from '../../simulators/device.ts'
import { startLiveFleet, type LiveFleet } from '../../simulators/live.ts'

// Runs the kit against a live simulated patrol device (optionally broken) on real MQTT.
async function check(quirks: DeviceQuirks = {}, noWill = false, clockOffsetMs = 0): Promise<ConformanceReport> {
  let live: LiveFleet | undefined
  const report = await runConformance({
    deviceId: 'conf-dev',
    secret: 'conf-secret',
    host: '127.0.0.1',
    offlineMs: 1500,
    phaseTimeoutMs: 3000,
    connectTimeoutMs: 5000,
    onListening: (port) => {
      live = startLiveFleet({ url: `mqtt://127.0.0.1:${port}`, reconnectMs: 250, quirks, noWill }, [{ deviceId: 'conf-dev', secret: 'conf-secret', checkinEveryMs: 200, clockOffsetMs }])
    },
  })
  await live?.stop()
  return report
}

const failing = (r: ConformanceReport) => r.rules.filter((x) => x.status === 'fail').map((x) => x.id)

const variants: [string, DeviceQuirks, boolean, string][] = [
  ['wrong topic identity', { topicDeviceId: 'someone-else' }, false, 'topic.identity'],
  ['seq going backwards after reconnect', { resetSeqOnReconnect: true }, false, 'seq.monotonic'],
  ['batch with seq ≠ 0', { batchSeq: 9 }, false, 'batch.rules'],
  ['batch items unordered', { unorderedBatch: true }, false, 'batch.rules'],
  ['no last will', {}, true, 'connect.last-will'],
  ['not acking commands', { ignoreCommands: true }, false, 'command.ack'],
  ['wrong QoS', { qos0: true }, false, 'publish.qos'],
  ['no t1 on an expired time_sync ack', { expiredSyncWithoutT1: true }, false, 'command.expired-sync'],
]

t.test('our patrol simulator passes every rule', async (t) => {
  const r = await check()
  if (!r.passed) t.comment(formatReport(r))
  t.ok(r.passed, 'all rules pass')
  t.same(failing(r), [])
  t.notOk(r.rules.some((x) => x.status === 'skip'), 'nothing skipped')
  t.ok(r.rules.some((x) => x.id === 'command.expired-sync' && x.status === 'pass'), 'its expired time_sync ack carries t1')
})

t.test('broken variants fail with the right rule named', async (t) => {
  const reports = await Promise.all(variants.map(([, q, noWill]) => check(q, noWill)))
  variants.forEach(([name, , , rule], i) => {
    const r = reports[i]!
    t.notOk(r.passed, name)
    t.ok(failing(r).includes(rule as never), `${name}: ${rule} fails (failing: ${failing(r).join(', ')})`)
    const text = formatReport(r)
    t.match(text, new RegExp(`FAIL\\s+${rule.replace('.', '\\.')}`), `${name}: named in the report`)
  })
  // Narrow variants fail only their own rule.
  t.same(failing(reports[1]!), ['seq.monotonic'])
  t.same(failing(reports[2]!), ['batch.rules'])
  t.same(failing(reports[6]!), ['publish.qos'])
  t.same(failing(reports[7]!), ['command.expired-sync'])
  const noT1 = reports[7]!.rules.find((x) => x.id === 'command.expired-sync')!.violations
  t.equal(noT1.length, 1, 'one violation: the expired time_sync')
  t.match(noT1[0]!.message, /^expired time_sync "conf-sync-expired-[0-9a-f]+": its ack lacks received_device_time_ms \(t1\)/, 'names the command and the missing t1')
  t.match(formatReport(reports[7]!), /FAIL\s+command\.expired-sync .*\n\s+- expired time_sync "conf-sync-expired-/, 'the report names the rule, then the command')
  const bad = reports[2]!.rules.find((x) => x.id === 'batch.rules')!.violations[0]!
  t.match(bad.hex!, /^[0-9a-f]+$/, 'the offending frame in hex')
})

t.test('a device whose clock is ahead past the commands\' expiry: the failure says by how much', async (t) => {
  const r = await check({}, false, 6 * 60_000)
  const ack = r.rules.find((x) => x.id === 'command.ack')
  t.equal(ack?.status, 'fail')
  t.match(ack?.violations.map((v) => v.message).join('\n'), /ping "conf-[^"]+" acked "expired": it expired by the device's clock, which read \S+ on receipt, ≈ 3[5-6]\d s ahead of the kit's; set the device clock/)
  t.ok(failing(r).includes('timestamps.plausible'), 'its device times are flagged too')
})
