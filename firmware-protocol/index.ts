// The public surface of the wire contract. Nothing else in firmware-protocol/ is
// imported from outside it.
export * from './topics.ts'
export * from './types.ts'
export * from './limits.ts'
export { ProtocolError, type ProtocolErrorCode, type Result } from './errors.ts'
export { decodeUplink, encodeUplink, encodeUplinkUnchecked, decodeCommand, encodeCommand, encodeCommandUnchecked, type UplinkContext } from './codec.ts'
export { validateUplink, validateCommand, checkDeviceClock, type ClockVerdict } from './validate.ts'
export { crc32 } from './crc.ts'
export { encodeFrame, cobsEncode, cobsDecode, Deframer, FRAME_DELIMITER, MAX_FRAME_BYTES, type DeframerStats, type DeframeError } from './framing.ts'
