/**
 * Defaults of the sync agent. gateway/config/schema.ts repeats them for the config reference; the
 * agent uses these when it is built without a config (tests, bench).
 */
export const SYNC_DEFAULTS = {
  /**
   * Most readings in one MQTT message; a live batch is sent as soon as it has this many. A backlog
   * drains in messages of this size: 5000 amortise each message's header, name table and round
   * trip (docs/performance.md, "Drain").
   */
  batchMaxReadings: 5000,
  /** largest encoded message (bytes): a cellular modem should not have to hold more */
  batchMaxBytes: 64 * 1024,
  /**
   * Longest a live reading waits for its batch (the latency the city sees, 15 s on average). Each
   * message pays ~10 bytes of MQTT framing, a 20-byte header and its name table: at the 1–2
   * readings/s of a greenhouse or a cabinet, 30 s keeps the wire near 5 bytes per reading where
   * 10 s costs 7 (docs/performance.md, "Wire").
   */
  batchMaxDelayMs: 30_000,
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
  /** while a backlog drains or confirmation lags: the retained status this often (progress) */
  statusIntervalMs: 60_000,
  /**
   * Otherwise the status goes only when something in it changes meaningfully, or this long after
   * the last one: at 60 s the status was a third of the wire (docs/performance.md, "Wire").
   */
  statusHeartbeatMs: 15 * 60_000,
  /** how often the agent looks whether the status changed meaningfully */
  statusCheckMs: 5000,
  /** the broker keeps the session (and queued commands) this long while the gateway is away */
  sessionExpiryS: 3600,
  eventsBatchMax: 100,
  /**
   * Confirmation (the city's end-to-end ack) lagging delivery this long: send everything
   * unconfirmed again. Receivers ack within a fraction of a second of their commit; two minutes
   * rides out a receiver restart without resending, and bounds what a lost message costs.
   */
  confirmTimeoutMs: 120_000,
  /**
   * A store that has never seen an ack falls back to PUBACK this long after its first delivery
   * (logged): a gateway pointed at a plain broker keeps working.
   */
  confirmStartupWindowMs: 600_000,
} as const;
