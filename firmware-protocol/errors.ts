// Protocol error codes (GP_PROTO_*). Errors are values: the codec and the
// deframer return them and never throw on input bytes.

export type ProtocolErrorCode =
  | 'GP_PROTO_TOO_LARGE' // payload above the size limit
  | 'GP_PROTO_DECODE' // bytes are not a valid protobuf message of the expected type
  | 'GP_PROTO_INVALID' // decoded, but a field breaks a rule of PROTOCOL.md
  | 'GP_PROTO_TOPIC_MISMATCH' // the body's kind differs from the topic's kind
  | 'GP_PROTO_IDENTITY' // the payload claims another device id than the topic
  | 'GP_PROTO_TOPIC' // the topic is not in the scheme

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError'
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
    /** The offending field as a path, e.g. `batch.items[3].checkin.fix.lat`. */
    readonly field?: string,
    /** Byte offset for decode errors, when known. */
    readonly offset?: number,
  ) {
    super(message)
  }

  toJSON(): { code: ProtocolErrorCode; message: string; field?: string; offset?: number } {
    return {
      code: this.code,
      message: this.message,
      ...(this.field !== undefined ? { field: this.field } : {}),
      ...(this.offset !== undefined ? { offset: this.offset } : {}),
    }
  }
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: ProtocolError }
