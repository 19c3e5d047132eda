// The vendor conformance kit: a test broker a real device (or a simulator)
// connects to; it drives the device through a script, records every frame and
// judges it against the protocol rules. `gridpatrol conformance` wraps this.
import { randomBytes } from 'node:crypto'
import { encodeCommand, type Command } from '../../firmware-protocol/index.ts'
import { evaluate, RULES, type RuleResult } from './rules.ts'
import { startConformanceServer, type ConformanceServer } from './server.ts'

export { RULES, type RuleId, type RuleResult, type Violation } from './rules.ts'
export { startConformanceServer, type ConformanceServer, type Recording } from './server.ts'

export interface ConformanceOptions {
  deviceId: string
  secret: string
  port?: number
  host?: string
  /** Uplink kinds the device must publish (default checkin, status). */
  expectKinds?: string[]
  /** How long to wait for the device to connect (default 60 s). */
  connectTimeoutMs?: number
  /** How long each waiting phase may take (default 30 s). */
  phaseTimeoutMs?: number
  /** How long the kit refuses reconnects during the offline phase (default 10 s). */
  offlineMs?: number
  /** Skip the offline/batch phase (devices without store-and-forward). */
  skipOffline?: boolean
  /** Step announcements (for the operator of a real device). */
  log?: (line: string) => void
  /** Called once the server listens (tests start their device here). */
  onListening?: (port: number) => void
}

export interface ConformanceReport {
  deviceId: string
  passed: boolean
  startedAt: string
  durationMs: number
  rules: RuleResult[]
  counts: { connects: number; publishes: number; commands: number }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function sendCommands(srv: ConformanceServer, log: (s: string) => void): Promise<void> {
  const now = Date.now()
  const nonce = randomBytes(8).toString('hex')
  const base = (n: string) => ({ commandId: `conf-${n}-${randomBytes(3).toString('hex')}`, issuedMs: now, expiresMs: now + 300_000 })
  const cmds: { c: Command; expectStatus?: string; nonceHex?: string }[] = [
    { c: { ...base('ping'), kind: 'ping', ping: { nonceHex: nonce } }, expectStatus: 'ok', nonceHex: nonce },
    { c: { ...base('sync'), kind: 'time_sync', timeSync: { serverTimeMs: now } }, expectStatus: 'ok' },
    { c: { ...base('config'), kind: 'config', config: { extra: { conformance: '1' } } } },
    { c: { ...base('expired'), issuedMs: now - 120_000, expiresMs: now - 60_000, kind: 'ping', ping: { nonceHex: '' } }, expectStatus: 'expired' },
    // After the live sync above, so even a device that applies expired commands until its first
    // sync (PROTOCOL.md §3.3) judges this one expired; its ack must still carry t1 (§6, rule command.expired-sync).
    { c: { ...base('sync-expired'), issuedMs: now - 120_000, expiresMs: now - 60_000, kind: 'time_sync', timeSync: { serverTimeMs: now } }, expectStatus: 'expired' },
  ]
  for (const { c, expectStatus, nonceHex } of cmds) {
    const payload = Buffer.from(encodeCommand(c))
    srv.recording.commands.push({ atMs: Date.now(), commandId: c.commandId, kind: c.kind, payload, ...(expectStatus ? { expectStatus } : {}), ...(nonceHex ? { nonceHex } : {}) })
    log(`  → ${c.kind} command ${c.commandId}${expectStatus === 'expired' ? ' (already expired)' : ''}`)
    await srv.sendCommand(payload)
  }
}

const acked = (srv: ConformanceServer) => () => {
  const ids = new Set(srv.recording.commands.map((c) => c.commandId))
  for (const p of srv.recording.publishes) if (p.topic.endsWith('/up/ack')) for (const id of ids) if (p.payload.includes(Buffer.from(id))) ids.delete(id)
  return ids.size === 0
}

/** Runs the whole script and returns the report (never throws for a bad device). */
export async function runConformance(opts: ConformanceOptions): Promise<ConformanceReport> {
  const log = opts.log ?? (() => {})
  const phase = opts.phaseTimeoutMs ?? 30_000
  const expectKinds = opts.expectKinds ?? ['checkin', 'status']
  const started = Date.now()
  const srv = await startConformanceServer({ deviceId: opts.deviceId, secret: opts.secret, ...(opts.port !== undefined ? { port: opts.port } : {}), ...(opts.host ? { host: opts.host } : {}) })
  const rec = srv.recording
  const mark = (name: string) => rec.marks.push({ atMs: Date.now(), name })
  let offlineTested = false
  try {
    log(`conformance broker listening on port ${srv.port}; connect device "${opts.deviceId}" now`)
    opts.onListening?.(srv.port)
    mark('connect')
    const ok = await srv.waitFor(() => srv.deviceConnected() && rec.subscribes.length > 0, opts.connectTimeoutMs ?? 60_000)
    if (!ok) log('  ✗ the device did not connect and subscribe in time')
    else {
      log(`step 1/4: waiting for ${expectKinds.join(', ')} messages`)
      mark('kinds')
      const kindsSeen = () => expectKinds.every((k) => rec.publishes.some((p) => p.topic.endsWith(`/up/${k}`) || (p.topic.endsWith('/up/batch') && k !== 'batch')))
      await srv.waitFor(kindsSeen, phase)
      log('step 2/4: sending commands (ping, time_sync, config, then an already expired ping and time_sync)')
      mark('commands')
      await sendCommands(srv, log)
      await srv.waitFor(acked(srv), Math.min(phase, 15_000))
      if (!opts.skipOffline) {
        const offlineMs = opts.offlineMs ?? 10_000
        log(`step 3/4: dropping the link and refusing reconnects for ${offlineMs / 1000} s (the device should buffer)`)
        offlineTested = true
        srv.accepting = false
        mark('offline')
        srv.dropDevice()
        await sleep(offlineMs)
        srv.accepting = true
        mark('reconnect')
        log('step 4/4: accepting again; waiting for reconnect and the batch upload')
        const since = Date.now()
        await srv.waitFor(() => srv.deviceConnected() && rec.publishes.some((p) => p.atMs >= since && p.topic.endsWith('/up/batch')), phase)
        // Let a few live messages follow so seq continuity across the reconnect is checked.
        const n = rec.publishes.length
        await srv.waitFor(() => rec.publishes.length >= n + 2, Math.min(phase, 5_000))
      }
    }
  } finally {
    await srv.close()
  }
  const rules = evaluate(rec, { deviceId: opts.deviceId, expectKinds, offlineTested })
  return {
    deviceId: opts.deviceId,
    passed: rules.every((r) => r.status !== 'fail'),
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    rules,
    counts: { connects: rec.connects.length, publishes: rec.publishes.length, commands: rec.commands.length },
  }
}

/** Human-readable report: one line per rule, violations with the offending frame in hex. */
export function formatReport(r: ConformanceReport): string {
  const lines = [`gridpatrol conformance — device ${r.deviceId} — ${r.passed ? 'PASS' : 'FAIL'} (${(r.durationMs / 1000).toFixed(1)} s)`, '']
  for (const rule of r.rules) {
    const mark = rule.status === 'pass' ? 'PASS' : rule.status === 'skip' ? 'SKIP' : 'FAIL'
    lines.push(`${mark}  ${rule.id.padEnd(22)} ${rule.title}${rule.note ? ` (${rule.note})` : ''}`)
    for (const v of rule.violations.slice(0, 5)) {
      lines.push(`      - ${v.message}`)
      if (v.topic) lines.push(`        topic: ${v.topic}`)
      if (v.hex) lines.push(`        frame: ${v.hex}`)
    }
    if (rule.violations.length > 5) lines.push(`      … ${rule.violations.length - 5} more`)
  }
  const failed = r.rules.filter((x) => x.status === 'fail').length
  lines.push('', `${r.rules.length - failed} of ${r.rules.length} rules passed or skipped; ${failed} failed`)
  return lines.join('\n')
}

export const RULE_IDS = Object.keys(RULES)
