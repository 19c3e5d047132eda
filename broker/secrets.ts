// Device and service secrets: stored only as slow scrypt hashes.
// Format: scrypt$N$r$p$saltB64$hashB64 (the store keeps this string).
import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { BrokerError } from './errors.ts'

const N = 16384
const R = 8
const P = 1
const KEY_LEN = 32

function derive(secret: string | Buffer, salt: Buffer, n: number, r: number, p: number, len: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, len, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)))
  })
}

/** A fresh random secret to hand to a device once (URL-safe, 32 bytes of entropy). */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url')
}

export async function hashSecret(secret: string | Buffer): Promise<string> {
  const salt = randomBytes(16)
  const key = await derive(secret, salt, N, R, P, KEY_LEN)
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`
}

/** Constant-time check of a secret against a stored hash string. */
export async function verifySecret(secret: string | Buffer, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') {
    throw new BrokerError('GP_BROKER_BAD_SECRET_HASH', 'stored secret hash is not in scrypt$N$r$p$salt$hash format')
  }
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])]
  const salt = Buffer.from(parts[4] ?? '', 'base64')
  const expected = Buffer.from(parts[5] ?? '', 'base64')
  if (!Number.isInteger(n) || !Number.isInteger(r) || !Number.isInteger(p) || expected.length === 0) {
    throw new BrokerError('GP_BROKER_BAD_SECRET_HASH', 'stored secret hash has bad parameters')
  }
  const actual = await derive(secret, salt, n, r, p, expected.length)
  return timingSafeEqual(actual, expected)
}

/**
 * Remembers secrets already verified against a stored hash, as HMACs under a
 * per-process random key, so reconnect storms (a broker restart, a fleet coming
 * back from a cellular outage) do not cost one scrypt each. A rotated secret has a
 * new stored hash, which misses the cache.
 */
export function createVerifyCache(maxEntries = 100_000): { verify(secret: string | Buffer, stored: string): Promise<boolean> } {
  const key = randomBytes(32)
  const seen = new Map<string, Buffer>()
  const mac = (secret: string | Buffer, stored: string) => createHmac('sha256', key).update(stored).update('\0').update(secret).digest()
  return {
    async verify(secret, stored) {
      const m = mac(secret, stored)
      const hit = seen.get(stored)
      if (hit && timingSafeEqual(hit, m)) return true
      const ok = await verifySecret(secret, stored)
      if (ok) {
        if (seen.size >= maxEntries) seen.delete(seen.keys().next().value as string)
        seen.set(stored, m)
      }
      return ok
    },
  }
}
