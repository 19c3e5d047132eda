// The docking cradle: uploads a device's stored envelopes as framed protobuf
// (PROTOCOL.md §7, COBS + CRC-32) over a serial port. A serial line carries no
// MQTT identity, so every envelope goes in its own frame WITH device_id set
// (the optional envelope field): the gateway refuses frames without it.
import { SerialPort } from 'serialport'
import { FRAME_DELIMITER, encodeFrame, encodeUplink, type Uplink } from '../firmware-protocol/index.ts'

const LEAD = Buffer.from([FRAME_DELIMITER])

export interface SerialDockOptions {
  path: string
  baudRate?: number
}

export interface SerialDock {
  /** Writes one frame per envelope (batches are flattened); resolves when drained. */
  upload(deviceId: string, envelopes: readonly Uplink[]): Promise<number>
  /** Raw bytes onto the line (tests inject line noise with this). */
  writeRaw(bytes: Uint8Array): Promise<void>
  close(): Promise<void>
}

/** The frames a dock sends for `envelopes` of `deviceId` (pure; `upload` also puts a 0x00 before each). */
export function dockFrames(deviceId: string, envelopes: readonly Uplink[]): Uint8Array[] {
  const flat = envelopes.flatMap((e) => (e.kind === 'batch' ? e.batch.items : [e]))
  return flat.map((e) => encodeFrame(encodeUplink({ ...e, deviceId })))
}

export async function openSerialDock(opts: SerialDockOptions): Promise<SerialDock> {
  const port = new SerialPort({ path: opts.path, baudRate: opts.baudRate ?? 115_200, autoOpen: false })
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())))
  const write = (bytes: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      port.write(Buffer.from(bytes), (err) => {
        if (err) return reject(err)
        port.drain((e) => (e ? reject(e) : resolve()))
      })
    })
  return {
    async upload(deviceId, envelopes) {
      const frames = dockFrames(deviceId, envelopes)
      // A leading delimiter ends whatever noise sits on the line, so the frame
      // starts clean (an empty frame is harmless: receivers count it as idle fill).
      for (const f of frames) await write(Buffer.concat([LEAD, f]))
      return frames.length
    },
    writeRaw: write,
    close: () => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
  }
}
