// Credentials revoked while connected: `gridpatrol device disable` and
// `rotate-secret` change the devices table (possibly from another process, on
// the server database); the broker only checks credentials at CONNECT. This
// sweep compares the broker's authenticated connections with the table every
// `intervalMs` and closes those whose account is gone, disabled, or whose
// secret was rotated since they authenticated: the connection's principal
// carries a stamp of the credential it authenticated with (directory.ts
// credentialStamp), compared with the stored one's — no clocks involved, so a
// rotation from a host whose clock is off neither kicks a device re-keyed just
// after it nor spares one connected just before it. Services are covered too.
import type { Broker, PresenceEvent } from '../../broker/index.ts'
import type { Logger } from '../logger.ts'
import type { Store } from '../store/types.ts'
import { credentialStamp } from './directory.ts'

export interface RevocationSweep {
  /** One pass now (the timer runs them too); the number of connections closed. */
  sweep(): Promise<number>
  stop(): Promise<void>
}

export function startRevocationSweep(opts: {
  store: Pick<Store, 'devices'>
  broker: Pick<Broker, 'sessions' | 'revoke' | 'on' | 'off'>
  log: Logger
  intervalMs: number
}): RevocationSweep {
  const { store, broker, log } = opts
  // Principals without a credential stamp (a directory that sets none): when each
  // device connection authenticated (its presence 'connect'), and a secret rotated
  // after that moment revokes it. Keyed by client id (= device id); a takeover's
  // 'connect' overwrites the old connection's entry, and entries of clients no
  // longer connected are dropped by the next pass (an 'offline' event may arrive
  // after the same id's next 'connect').
  const connectedAt = new Map<string, number>()
  const onPresence = (ev: PresenceEvent) => {
    if (ev.online) connectedAt.set(ev.clientId, ev.at.getTime())
  }
  broker.on('presence', onPresence)

  let running: Promise<number> | undefined
  const sweep = (): Promise<number> => {
    running ??= pass().finally(() => (running = undefined))
    return running
  }
  async function pass(): Promise<number> {
    const sessions = broker.sessions().flatMap((s) =>
      s.principal.kind === 'device' ? [{ clientId: s.clientId, account: s.principal.deviceId, device: true, credential: s.principal.credential }]
      : s.principal.kind === 'service' ? [{ clientId: s.clientId, account: s.principal.name, device: false, credential: s.principal.credential }]
      : [],
    )
    const live = new Set(sessions.map((s) => s.clientId))
    for (const id of connectedAt.keys()) if (!live.has(id)) connectedAt.delete(id)
    if (sessions.length === 0) return 0
    const rows = await store.devices.getMany([...new Set(sessions.map((s) => s.account))])
    let closed = 0
    for (const s of sessions) {
      const row = rows.get(s.account)
      const since = connectedAt.get(s.clientId)
      const rotated =
        row === undefined ? false
        : s.credential !== undefined ? credentialStamp(row.secretHash) !== s.credential
        : s.device && row.rotatedAt !== null && since !== undefined && row.rotatedAt.getTime() > since
      const why = !row
        ? 'account removed'
        : row.disabled
          ? `${s.device ? 'device' : 'service account'} disabled`
          : rotated
            ? 'secret rotated after it connected'
            : undefined
      // The broker logs each revocation with its reason.
      if (why && broker.revoke(s.clientId, why)) closed++
    }
    return closed
  }

  const timer = setInterval(() => {
    sweep().catch((err: unknown) => log.warn({ err }, 'revocation check failed; retried at the next interval'))
  }, opts.intervalMs)
  timer.unref()
  return {
    sweep,
    async stop() {
      clearInterval(timer)
      broker.off('presence', onPresence)
      await running?.catch(() => undefined)
    },
  }
}
