import t from 'tap'
import { loadConfig, ConfigError, describeEnv } from '../../src/config/index.ts'

t.test('defaults: embedded database, standard ports, frozen', async (t) => {
  const c = loadConfig({})
  t.equal(c.mqtt.port, 1883)
  t.equal(c.mqtt.tlsPort, 8883)
  t.equal(c.mqtt.wsPort, 8083)
  t.equal(c.http.port, 8080)
  t.equal(c.dataDir, './data')
  t.equal(c.databaseUrl, undefined)
  t.equal(c.redisUrl, undefined)
  t.equal(c.mqtt.allowAnonymous, false)
  t.equal(c.mqtt.tls, undefined)
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.mqtt), 'config is frozen')
})

t.test('values are parsed; port 0 means ephemeral; empty strings mean unset', async (t) => {
  const c = loadConfig({
    GRIDPATROL_MQTT_PORT: '0',
    GRIDPATROL_HTTP_PORT: '9090',
    DATABASE_URL: 'postgres://u@h:5432/db',
    REDIS_URL: '',
    GRIDPATROL_MQTT_ALLOW_ANONYMOUS: '1',
    GRIDPATROL_TLS_CERT: 'c.pem',
    GRIDPATROL_TLS_KEY: 'k.pem',
  })
  t.equal(c.mqtt.port, 0)
  t.equal(c.http.port, 9090)
  t.equal(c.databaseUrl, 'postgres://u@h:5432/db')
  t.equal(c.redisUrl, undefined)
  t.equal(c.mqtt.allowAnonymous, true)
  t.same(c.mqtt.tls, { cert: 'c.pem', key: 'k.pem' })
})

t.test('every bad variable is reported at once, by name', async (t) => {
  let err: unknown
  try {
    loadConfig({
      GRIDPATROL_MQTT_PORT: 'abc',
      GRIDPATROL_WS_PORT: '70000',
      DATABASE_URL: 'mysql://x',
      REDIS_URL: 'http://x',
      GRIDPATROL_LOG_LEVEL: 'loud',
      GRIDPATROL_MQTT_ALLOW_ANONYMOUS: 'maybe',
    })
  } catch (e) {
    err = e
  }
  t.ok(err instanceof ConfigError, 'throws ConfigError')
  const problems = (err as ConfigError).problems.join('\n')
  for (const name of ['GRIDPATROL_MQTT_PORT', 'GRIDPATROL_WS_PORT', 'DATABASE_URL', 'REDIS_URL', 'GRIDPATROL_LOG_LEVEL', 'GRIDPATROL_MQTT_ALLOW_ANONYMOUS'])
    t.match(problems, name, `${name} named`)
  t.equal((err as ConfigError).problems.length, 6)
})

t.test('TLS certificate and key go together', async (t) => {
  t.throws(() => loadConfig({ GRIDPATROL_TLS_CERT: 'c.pem' }), /GRIDPATROL_TLS_CERT and GRIDPATROL_TLS_KEY/)
})

t.test('every variable is documented with a description', async (t) => {
  const vars = describeEnv()
  t.ok(vars.length >= 10)
  for (const v of vars) t.ok(v.description.length > 10, `${v.name} described`)
  t.equal(vars.find((v) => v.name === 'GRIDPATROL_MQTT_PORT')?.default, '1883')
})

t.test('README documents every variable', async (t) => {
  const { readFile } = await import('node:fs/promises')
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
  for (const v of describeEnv()) {
    const base = v.name.replace(/_(BURST)$/, '_RATE')
    t.ok(readme.includes(v.name) || (v.name.endsWith('_BURST') && readme.includes(base)), `${v.name} in README`)
  }
})

t.test('time sync interval: hours, default 6; zero or words refused by name', async (t) => {
  t.equal(loadConfig({}).timeSyncEveryMs, 6 * 3_600_000)
  t.equal(loadConfig({ GRIDPATROL_TIME_SYNC_HOURS: '0.5' }).timeSyncEveryMs, 1_800_000)
  t.throws(() => loadConfig({ GRIDPATROL_TIME_SYNC_HOURS: '0' }), /GRIDPATROL_TIME_SYNC_HOURS/)
  t.throws(() => loadConfig({ GRIDPATROL_TIME_SYNC_HOURS: 'daily' }), /GRIDPATROL_TIME_SYNC_HOURS/)
})

t.test('shutdown grace: seconds, default 5, fractions allowed; zero, negative or words refused by name', async (t) => {
  t.equal(loadConfig({}).shutdownGraceMs, 5_000)
  t.equal(loadConfig({ GRIDPATROL_SHUTDOWN_GRACE_SECONDS: '0.5' }).shutdownGraceMs, 500)
  t.equal(loadConfig({ GRIDPATROL_SHUTDOWN_GRACE_SECONDS: '20' }).shutdownGraceMs, 20_000)
  for (const bad of ['0', '-1', 'soon']) t.throws(() => loadConfig({ GRIDPATROL_SHUTDOWN_GRACE_SECONDS: bad }), /GRIDPATROL_SHUTDOWN_GRACE_SECONDS/, bad)
  t.equal(describeEnv().find((v) => v.name === 'GRIDPATROL_SHUTDOWN_GRACE_SECONDS')?.default, '5')
})
