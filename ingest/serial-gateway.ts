// Serial gateway (ingest side): reads framed protobuf from a docking cradle or an
// RS-485 line (PROTOCOL.md §7) and hands each envelope to the same commit path
// as MQTT uplinks. Self-contained: it takes a `commit` callback and a port.
//
// Identity: a serial line has no MQTT login, so each frame must carry the
// envelope's device_id (the dock sets it); frames without it are counted and
// passed to `onReject`, never committed under a guessed id. The line is trusted
// physically (a cradle in the station), not cryptographically.
import { SerialPort } from 'serialport'
import { Deframer, decodeUplink, uplinkTopic, type DeframeError, type DeframerStats, type UplinkKind } from '../firmware-protocol/index.ts'

export interface SerialUplink {
  deviceId: string
  kind: UplinkKind
  /** The MQTT topic this envelope would have arrived on (same pipeline key). */
  topic: string
  /** The frame payload: one encoded Uplink envelope. */
  payload: Buffer
  receivedAt: Date
  /** e.g. "serial:/dev/ttyUSB0". */
  source: string
}

export interface SerialReject {
  /** GP_PROTO_* from the decoder, or GP_SERIAL_NO_DEVICE_ID. */
  code: string
  message: string
  /** `code: message`. */
  reason: string
  /** The field the decoder names, when it names one. */
  field?: string
  payload: Buffer
  receivedAt: Date
  /** e.g. "serial:/dev/ttyUSB0". */
  source: string
}

export interface SerialGatewayOptions {
  path: string
  baudRate?: number
  /** Resolves once the message is durable; called in frame order, one at a time. */
  commit(msg: SerialUplink): Promise<void>
  /** Frames that deframed but cannot be attributed or decoded; resolves once stored (retried like commit). */
  onReject?(r: SerialReject): void | Promise<void>
  onLineError?(kind: DeframeError): void
  /** How long close() waits for the frames received to commit. Default 5000 ms. */
  closeTimeoutMs?: number
}

export interface SerialGatewayStats extends DeframerStats {
  committed: number
  rejected: number
  commitErrors: number
}

export interface SerialGateway {
  readonly stats: SerialGatewayStats
  /** Resolves when every frame received so far has been committed. */
  idle(): Promise<void>
  /**
   * Stops reading; the frames received get closeTimeoutMs to commit, then the
   * retries stop. Resolves with how many frames were not committed (the device
   * keeps its buffer until the dock confirms the upload: dock it again).
   */
  close(): Promise<{ notCommitted: number }>
}

export async function openSerialGateway(opts: SerialGatewayOptions): Promise<SerialGateway> {
  const counts = { committed: 0, rejected: 0, commitErrors: 0 }
  const deframer = new Deframer((kind) => opts.onLineError?.(kind))
  const source = `serial:${opts.path}`
  let chain: Promise<void> = Promise.resolve()
  let closing = false
  let abandoned = false
  /** Frames given up at close (their commit failed while closing, or never tried). */
  let givenUp = 0
  // Frames received but not yet committed; above the high mark the port is paused
  // (the OS buffer and the cradle's flow control hold the rest), bounding memory.
  let backlog = 0
  const HIGH = 1_000
  const LOW = 100

  // DESIGN: nothing accepted is lost — a commit (or a reject's store) that fails,
  // database down, is retried with backoff while the line is paused, not dropped;
  // close() ends the retrying and counts the frames left (the device keeps them).
  let wake: (() => void) | undefined
  const durably = async (store: () => Promise<void> | void): Promise<boolean> => {
    for (let delay = 100; ; delay = Math.min(delay * 2, 5_000)) {
      try {
        await store()
        return true
      } catch {
        counts.commitErrors++
        if (closing) return false
        // close() cuts the backoff short (one frame at a time: one sleep at most).
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay)
          wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        wake = undefined
      }
    }
  }

  /** One frame: true once it is stored (as a message or a reject), false when close() gave it up. */
  const handle = async (frame: Uint8Array): Promise<boolean> => {
    if (abandoned) return false // closed: the frames still queued are not tried (close() counted them)
    const payload = Buffer.from(frame)
    const receivedAt = new Date()
    const r = decodeUplink(payload)
    const reject = async (code: string, message: string, field?: string) => {
      const rej: SerialReject = { code, message, reason: `${code}: ${message}`, ...(field ? { field } : {}), payload, receivedAt, source }
      const ok = await durably(() => opts.onReject?.(rej))
      if (ok) counts.rejected++
      return ok
    }
    if (!r.ok) return reject(r.error.code, r.error.message, r.error.field)
    const deviceId = r.value.deviceId
    if (!deviceId) return reject('GP_SERIAL_NO_DEVICE_ID', 'envelope has no device_id: a serial frame must name its device', 'device_id')
    const msg = { deviceId, kind: r.value.kind, topic: uplinkTopic(deviceId, r.value.kind), payload, receivedAt, source }
    const ok = await durably(() => opts.commit(msg))
    if (ok) counts.committed++
    return ok
  }

  const port = new SerialPort({ path: opts.path, baudRate: opts.baudRate ?? 115_200, autoOpen: false })
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())))
  port.on('data', (chunk: Buffer) => {
    for (const frame of deframer.push(chunk)) {
      if (++backlog > HIGH && !port.isPaused()) port.pause()
      chain = chain.then(async () => {
        let stored = false
        try {
          stored = await handle(frame)
        } finally {
          // Both at once: a frame is in the backlog or given up, never both (close() adds them).
          if (!stored) givenUp++
          if (--backlog < LOW && port.isPaused()) port.resume()
        }
      })
    }
  })

  return {
    get stats() {
      return { ...deframer.stats, ...counts }
    },
    idle: () => chain,
    async close() {
      closing = true
      wake?.()
      let timer: NodeJS.Timeout | undefined
      await Promise.race([chain, new Promise((r) => (timer = setTimeout(r, opts.closeTimeoutMs ?? 5_000)))])
      clearTimeout(timer)
      const notCommitted = givenUp + backlog
      abandoned = true
      await new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve()))
      return { notCommitted }
    },
  }
}
