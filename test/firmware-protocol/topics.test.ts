import t from 'tap'
import { UPLINK_KINDS, commandTopic, isValidDeviceId, parseTopic, presenceTopic, uplinkTopic } from '../../firmware-protocol/index.ts'

t.test('builders and parser agree for every topic of a device', async (t) => {
  for (const kind of UPLINK_KINDS) t.same(parseTopic(uplinkTopic('gp-dev-0001', kind)), { ok: true, deviceId: 'gp-dev-0001', direction: 'up', kind, version: 'v1' })
  t.equal(commandTopic('A_b-9'), 'gp/v1/A_b-9/down/cmd')
  t.same(parseTopic('gp/v1/A_b-9/down/cmd'), { ok: true, deviceId: 'A_b-9', direction: 'down', kind: 'cmd', version: 'v1' })
  t.equal(presenceTopic('d1'), 'gp/v1/d1/presence')
  t.same(parseTopic('gp/v1/d1/presence'), { ok: true, deviceId: 'd1', direction: 'presence', version: 'v1' })
  t.equal(uplinkTopic('d1', 'checkin'), 'gp/v1/d1/up/checkin')
})

t.test('topics outside the scheme come back with a reason', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['', /must start with "gp\/"/],
    ['gp', /unsupported protocol version ""/],
    ['xx/v1/d1/up/checkin', /must start/],
    ['gp/v2/d1/up/checkin', /unsupported protocol version "v2"/],
    ['gp/v1//up/checkin', /invalid device id ""/],
    ['gp/v1/d+1/up/checkin', /invalid device id/],
    ['gp/v1/#/up/checkin', /invalid device id/],
    ['gp/v1/$SYS/up/checkin', /invalid device id/],
    ['gp/v1/d 1/up/checkin', /invalid device id/],
    [`gp/v1/${'a'.repeat(65)}/up/checkin`, /invalid device id/],
    ['gp/v1/d1/up/position', /unknown uplink kind "position"/],
    ['gp/v1/d1/up', /not in the gridpatrol scheme/],
    ['gp/v1/d1/up/checkin/extra', /not in the gridpatrol scheme/],
    ['gp/v1/d1/up/checkin/', /not in the gridpatrol scheme/],
    ['gp/v1/d1/down/other', /not in the gridpatrol scheme/],
    ['gp/v1/d1/down', /not in the gridpatrol scheme/],
    ['gp/v1/d1', /not in the gridpatrol scheme/],
    ['gp/v1/d1/presence/x', /not in the gridpatrol scheme/],
    ['GP/v1/d1/up/checkin', /must start/],
    ['gp/V1/d1/up/checkin', /unsupported protocol version/],
    ['gp/v1/d1/UP/checkin', /not in the gridpatrol scheme/],
    ['gp/v1/d1/up/CHECKIN', /unknown uplink kind/],
  ]
  for (const [topic, reason] of cases) {
    const p = parseTopic(topic)
    t.equal(p.ok, false, `"${topic}" refused`)
    if (!p.ok) t.match(p.reason, reason, `"${topic}": ${p.reason}`)
  }
})

t.test('device ids: 1–64 of [A-Za-z0-9_-]', async (t) => {
  for (const id of ['a', 'A-Z_0-9', 'x'.repeat(64), 'gp-dev-0001']) t.ok(isValidDeviceId(id), id)
  for (const id of ['', 'x'.repeat(65), 'a/b', 'a+b', 'a#', '$a', 'a b', 'a.b', '设备', 'a\u0000']) t.notOk(isValidDeviceId(id), JSON.stringify(id))
})
