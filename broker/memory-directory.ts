// An in-memory DeviceDirectory: real hashing and refusals, used by tests and the lab.
// src/ implements the same interface over the store's devices table.
import { isValidDeviceId } from '../firmware-protocol/index.ts'
import { createVerifyCache, generateSecret, hashSecret } from './secrets.ts'
import type { Credentials, DeviceDirectory, Principal, Refusal, ServiceRights } from './types.ts'

export interface DeviceRecord {
  deviceId: string
  kind: string
  vendor: string
  secretHash: string
  enabled: boolean
}

export interface ServiceRecord {
  name: string
  secretHash: string
  rights: ServiceRights
  enabled: boolean
}

export interface MemoryDirectory extends DeviceDirectory {
  /** Registers a device; returns its secret (generated unless given) — the only time it is visible. */
  addDevice(d: { deviceId: string; kind?: string; vendor?: string; secret?: string }): Promise<string>
  addService(s: { name: string; rights: ServiceRights; secret?: string }): Promise<string>
  disableDevice(deviceId: string): void
  enableDevice(deviceId: string): void
  rotateSecret(deviceId: string): Promise<string>
  listDevices(): Array<Omit<DeviceRecord, 'secretHash'>>
}

export function createMemoryDirectory(): MemoryDirectory {
  const devices = new Map<string, DeviceRecord>()
  const services = new Map<string, ServiceRecord>()
  const cache = createVerifyCache()

  const device = (id: string) => {
    const d = devices.get(id)
    if (!d) throw new Error(`unknown device "${id}"`)
    return d
  }

  return {
    async addDevice({ deviceId, kind = 'patrol', vendor = 'unknown', secret = generateSecret() }) {
      if (!isValidDeviceId(deviceId)) throw new Error(`invalid device id "${deviceId}" (1-64 of [A-Za-z0-9_-])`)
      if (devices.has(deviceId) || services.has(deviceId)) throw new Error(`"${deviceId}" already exists`)
      devices.set(deviceId, { deviceId, kind, vendor, secretHash: await hashSecret(secret), enabled: true })
      return secret
    },
    async addService({ name, rights, secret = generateSecret() }) {
      if (devices.has(name) || services.has(name)) throw new Error(`"${name}" already exists`)
      services.set(name, { name, rights, secretHash: await hashSecret(secret), enabled: true })
      return secret
    },
    disableDevice(id) {
      device(id).enabled = false
    },
    enableDevice(id) {
      device(id).enabled = true
    },
    async rotateSecret(id) {
      const d = device(id)
      const secret = generateSecret()
      d.secretHash = await hashSecret(secret)
      return secret
    },
    listDevices() {
      return [...devices.values()].map(({ secretHash: _h, ...rest }) => ({ ...rest }))
    },
    async isReserved(id) {
      return devices.has(id) || services.has(id)
    },
    async authenticate({ username, password, certCN }: Credentials): Promise<Principal | Refusal | null> {
      if (certCN !== undefined) {
        // A verified client certificate names the device; a username, if any, must agree.
        if (username !== undefined && username !== certCN) return { refused: 'username does not match certificate CN' }
        const d = devices.get(certCN)
        if (!d) return null
        if (!d.enabled) return { refused: 'device disabled' }
        return { kind: 'device', deviceId: d.deviceId }
      }
      if (username === undefined || password === undefined) return null
      const d = devices.get(username)
      if (d) {
        if (!(await cache.verify(password, d.secretHash))) return null
        // Checked after the secret so a disabled id cannot be probed without it.
        if (!d.enabled) return { refused: 'device disabled' }
        return { kind: 'device', deviceId: d.deviceId }
      }
      const s = services.get(username)
      if (s && (await cache.verify(password, s.secretHash))) {
        if (!s.enabled) return { refused: 'service disabled' }
        return { kind: 'service', name: s.name, rights: { publish: [...s.rights.publish], subscribe: [...s.rights.subscribe] } }
      }
      return null
    },
  }
}
