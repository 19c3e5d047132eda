// One small converter per uplink kind (aedes' handler-per-packet idea), behind
// the switch in toRecord: the protocol's types in, the store's rows out.
import type { Alarm, CheckIn, CommandAck, Status, Telemetry, Uplink } from '../firmware-protocol/index.ts'
import type { UplinkRecord, UplinkSource } from '../src/store/types.ts'
import { checkDeviceClock } from '../firmware-protocol/index.ts'
import { clockFlags } from './stages/validate.ts'

export interface RecordContext {
  deviceId: string
  receivedAtMs: number
  gridId: string | null
  /** tag id → checkpoint id, for the registered tags (a Map, or the lookups' one-tag view). */
  checkpoints: { get(tagId: string): string | undefined }
  source: UplinkSource
}

type Base = Pick<UplinkRecord, 'deviceId' | 'seq' | 'deviceTimeMs' | 'receivedAtMs' | 'clockFuture' | 'clockAncient' | 'source'>

export function toRecord(u: Exclude<Uplink, { kind: 'batch' }> | Uplink, ctx: RecordContext): UplinkRecord {
  // The hot path (most uplinks are check-ins): one object literal, no spreads.
  if (u.kind === 'checkin') return checkIn(u, u.checkin, ctx)
  const base: Base = {
    deviceId: ctx.deviceId,
    seq: u.seq,
    deviceTimeMs: u.deviceTimeMs,
    receivedAtMs: ctx.receivedAtMs,
    ...clockFlags(u.deviceTimeMs, ctx.receivedAtMs),
    source: ctx.source,
  }
  switch (u.kind) {
    case 'telemetry':
      return telemetry(base, u.telemetry, ctx)
    case 'status':
      return status(base, u.status)
    case 'alarm':
      return alarm(base, u.alarm)
    case 'ack':
      return ack(base, u.ack)
    case 'batch':
      // PROTOCOL.md: items never contain a batch (the codec refuses it).
      throw new Error('a batch inside a batch reached the ingest')
  }
}

function checkIn(u: Uplink, c: CheckIn, ctx: RecordContext): UplinkRecord {
  const fix = c.fix
  const flags = checkDeviceClock(u.deviceTimeMs, ctx.receivedAtMs)
  return {
    kind: 'checkin',
    deviceId: ctx.deviceId,
    seq: u.seq,
    deviceTimeMs: u.deviceTimeMs,
    receivedAtMs: ctx.receivedAtMs,
    clockFuture: flags === 'future',
    clockAncient: flags === 'ancient',
    source: ctx.source,
    tagId: c.tagId,
    method: c.method,
    checkpointId: ctx.checkpoints.get(c.tagId) ?? null,
    gridId: ctx.gridId,
    lat: fix?.lat,
    lon: fix?.lon,
    accuracyM: fix?.accuracyM,
    badgeId: c.badgeId || undefined,
    batteryPct: c.batteryPct,
  }
}

function telemetry(base: Base, t: Telemetry, ctx: RecordContext): UplinkRecord {
  return {
    ...base,
    kind: 'telemetry',
    readings: t.readings.map((r) => {
      const at = r.timeMs ?? base.deviceTimeMs
      return { metric: r.metric, value: r.value, ...(r.unit ? { unit: r.unit } : {}), deviceTimeMs: at, ...clockFlags(at, ctx.receivedAtMs) }
    }),
  }
}

function status(base: Base, s: Status): UplinkRecord {
  return {
    ...base,
    kind: 'status',
    ...(s.batteryPct !== undefined ? { batteryPct: s.batteryPct } : {}),
    ...(s.batteryMv !== undefined ? { batteryMv: s.batteryMv } : {}),
    ...(s.signalDbm !== undefined ? { signalDbm: s.signalDbm } : {}),
    ...(s.firmwareVersion ? { firmwareVersion: s.firmwareVersion } : {}),
    ...(s.uptimeS !== undefined ? { uptimeS: s.uptimeS } : {}),
    ...(s.bufferedCount !== undefined ? { bufferedCount: s.bufferedCount } : {}),
    ...(s.bootCount !== undefined ? { bootCount: s.bootCount } : {}),
    ...(s.fix ? { lat: s.fix.lat, lon: s.fix.lon } : {}),
  }
}

function alarm(base: Base, a: Alarm): UplinkRecord {
  return {
    ...base,
    kind: 'alarm',
    alarmKind: a.kind,
    ...(a.fix ? { lat: a.fix.lat, lon: a.fix.lon } : {}),
    ...(a.badgeId ? { badgeId: a.badgeId } : {}),
    ...(a.detail ? { detail: a.detail } : {}),
  }
}

function ack(base: Base, a: CommandAck): UplinkRecord {
  return {
    ...base,
    kind: 'ack',
    commandId: a.commandId,
    status: a.status,
    ...(a.detail ? { detail: a.detail } : {}),
    ...(a.receivedDeviceTimeMs ? { receivedDeviceTimeMs: a.receivedDeviceTimeMs } : {}),
    ...(a.nonceHex ? { nonceHex: a.nonceHex } : {}),
  }
}
