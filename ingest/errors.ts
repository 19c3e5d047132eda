// Ingest reason codes (GP_INGEST_*), stored on reject rows beside the protocol's
// GP_PROTO_* codes. Errors here are values on a message, never thrown at aedes.

export type IngestRejectCode =
  | 'GP_INGEST_UNKNOWN_DEVICE' // the topic's device is not registered (external-broker mode)
  | 'GP_INGEST_DISABLED_DEVICE' // registered but disabled
  | 'GP_INGEST_STORE' // the database refused this message's rows (a data error, isolated)
  | 'GP_INGEST_SEQ_CONFLICT' // same seq already stored with another device time (set by the store)

export class IngestError extends Error {
  override readonly name = 'IngestError'
  constructor(
    readonly code: 'GP_INGEST_CLOSED' | 'GP_INGEST_OVERLOADED',
    message: string,
  ) {
    super(message)
  }
}
