// Broker process for bench/broker.ts: `ours` (auth + ACL + commit hook on) or `bare` aedes.
// Prints the port on stdout, then serves until killed.
import { createServer } from 'node:net'
import { Aedes } from 'aedes'
import { createBroker, createVerifyCache, hashSecret, type DeviceDirectory } from '../../broker/index.ts'

const [mode = 'ours', devicesArg = '1000', noDelayArg = '1'] = process.argv.slice(2)
if (mode === 'bare') {
  const aedes = await Aedes.createBroker()
  const server = createServer({ noDelay: noDelayArg === '1' }, aedes.handle)
  server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: (server.address() as { port: number }).port })))
} else {
  // Every bench device shares one secret so start-up is not 5,000 scrypt hashes; each
  // CONNECT still goes through the directory and the verify cache, as in production.
  void devicesArg
  const hash = await hashSecret('bench')
  const cache = createVerifyCache()
  const directory: DeviceDirectory = {
    async authenticate({ username, password }) {
      if (!username || !password || !(await cache.verify(password, hash))) return null
      if (username === 'bench-sub') return { kind: 'service', name: 'bench-sub', rights: { publish: [], subscribe: ['gp/v1/+/up/#'] } }
      return /^bench-\d+$/.test(username) ? { kind: 'device', deviceId: username } : null
    },
  }
  const broker = createBroker({
    port: 0,
    wsPort: null,
    noDelay: noDelayArg === '1',
    directory,
    // The sink resolves at once: this measures the broker, not a database.
    sink: { commit: async () => {} },
    limits: { publishRate: 1e9, publishBurst: 1e9, flapLimit: 1e9 },
  })
  const ports = await broker.listen()
  console.log(JSON.stringify({ port: ports.mqtt }))
}
