/**
 * Defaults of the sync agent. gateway/config/schema.ts repeats them for the config reference; the
 * agent uses these when it is built without a config (tests, bench).
 */
export const SYNC_DEFAULTS = {
  /** most readings in one MQTT message */
  batchMaxReadings: 1000,
  /** largest encoded message (bytes): a cellular modem should not have to hold more */
  batchMaxBytes: 64 * 1024,
  /**
   * Longest a live reading waits for its batch. Each message pays ~45 bytes of MQTT framing and
   * its own string table; 10 s at 15 readings/s keeps that under 1 byte per reading.
   */
  batchMaxDelayMs: 10_000,
  /** backlog drain pace, readings per second */
  backlogRate: 5000,
  /** batches published and not yet acknowledged */
  inflightWindow: 8,
  /** connected, work in flight, no PUBACK for this long: rebuild the client */
  watchdogMs: 30_000,
  reconnectMinMs: 1000,
  reconnectMaxMs: 60_000,
  connectTimeoutMs: 15_000,
  keepaliveS: 30,
  statusIntervalMs: 60_000,
  /** the broker keeps the session (and queued commands) this long while the gateway is away */
  sessionExpiryS: 3600,
  eventsBatchMax: 100,
} as const;
