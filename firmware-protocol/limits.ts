// Limits of the v1 contract (PROTOCOL.md §4). Changing one is a protocol change.

/** Largest uplink or downlink payload, bytes. */
export const MAX_PAYLOAD_BYTES = 65_536
/** Items in one Batch. */
export const MAX_BATCH_ITEMS = 500
/** Readings in one Telemetry. */
export const MAX_READINGS = 100
/** Tag id length, UTF-8 bytes. */
export const MAX_TAG_ID_BYTES = 128
/** Badge id length, characters (code points). */
export const MAX_BADGE_ID_CHARS = 64
export const MAX_DETAIL_CHARS = 256
export const MAX_FIRMWARE_CHARS = 32
export const MAX_UNIT_CHARS = 16
export const MAX_COMMAND_ID_CHARS = 64
export const MAX_NONCE_BYTES = 32
export const MAX_CONFIG_EXTRA_KEYS = 32
/** ConfigUpdate.extra: keys match [A-Za-z0-9_.-]{1,64}; values at most this many characters. */
export const MAX_CONFIG_EXTRA_VALUE_CHARS = 256
/** Metric names: lower-case letters, digits, '_' and '.', 1–64 characters. */
export const METRIC_PATTERN = /^[a-z0-9_.]{1,64}$/
/** Largest sequence number / timestamp representable exactly (2^53 - 1). */
export const MAX_SAFE = Number.MAX_SAFE_INTEGER

/** Clock plausibility (PROTOCOL.md §6): flagged, never rewritten. */
export const CLOCK_FUTURE_TOLERANCE_MS = 5 * 60_000
/** Device times before this instant (2020-01-01T00:00:00Z) are "ancient" (a reset clock). */
export const CLOCK_EPOCH_FLOOR_MS = Date.UTC(2020, 0, 1)
