// The broker's DeviceDirectory over the store's devices table (the broker defines
// the interface; this is the production implementation, wired by src/main.ts).
import { createVerifyCache, type Credentials, type DeviceDirectory, type Principal, type Refusal, type ServiceRights } from '../../broker/index.ts'
import type { Store } from '../store/types.ts'

/**
 * Rights of service accounts (devices table, kind 'service'): an external ingest,
 * monitoring or operator tool reads every device's uplinks and presence and may
 * queue commands. Devices never get these.
 */
export const SERVICE_RIGHTS: ServiceRights = Object.freeze({
  publish: ['gp/v1/+/down/cmd'],
  subscribe: ['gp/v1/+/up/#', 'gp/v1/+/presence'],
}) as ServiceRights

/**
 * The stamp of a stored credential that a connection's principal carries
 * (broker Principal.credential): FNV-1a of the secret hash cut to 30 bits (a small
 * integer V8 keeps in the object, not a boxed number per connection), the hash being
 * salted afresh by every rotation. The revocation sweep compares it with the
 * stored row's, so a rotation ends sessions opened with the old secret whatever
 * the clocks of the host that rotated it and of the broker say.
 */
export function credentialStamp(secretHash: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < secretHash.length; i++) h = Math.imul(h ^ secretHash.charCodeAt(i), 0x01000193)
  return h & 0x3fffffff
}

export function createStoreDirectory(store: Pick<Store, 'devices'>): DeviceDirectory {
  const cache = createVerifyCache()
  return {
    // Lab mode: an anonymous client id may not be, or look like, a registered
    // device's or service's (`<service>:<suffix>`), so it cannot take over a session.
    async isReserved(id: string): Promise<boolean> {
      const name = id.includes(':') ? id.slice(0, id.indexOf(':')) : id
      return (await store.devices.get(id)) !== undefined || (name !== id && (await store.devices.get(name)) !== undefined)
    },
    async authenticate({ username, password, certCN }: Credentials): Promise<Principal | Refusal | null> {
      if (certCN !== undefined) {
        // A verified client certificate names the device; a username, if any, must agree.
        if (username !== undefined && username !== certCN) return { refused: 'username does not match certificate CN' }
        const d = await store.devices.get(certCN)
        if (!d || d.kind === 'service') return null
        return d.disabled ? { refused: 'device disabled' } : { kind: 'device', deviceId: d.id, credential: credentialStamp(d.secretHash) }
      }
      if (username === undefined || password === undefined) return null
      const d = await store.devices.get(username)
      if (!d || !(await cache.verify(password, d.secretHash))) return null
      // Checked after the secret, so a disabled id cannot be probed without it.
      if (d.disabled) return { refused: d.kind === 'service' ? 'service account disabled' : 'device disabled' }
      const credential = credentialStamp(d.secretHash)
      if (d.kind === 'service') return { kind: 'service', name: d.id, rights: { publish: [...SERVICE_RIGHTS.publish], subscribe: [...SERVICE_RIGHTS.subscribe] }, credential }
      return { kind: 'device', deviceId: d.id, credential }
    },
  }
}
