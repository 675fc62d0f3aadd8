import type { IClientOptions, MqttClient } from 'mqtt';
import type { Clock } from '../gateway/core/clock.js';
import type { CommandExecutor } from '../gateway/core/command.js';
import { describeError, LangbiangError } from '../gateway/core/errors.js';
import type { EventOutbox, Outbox, ReadingColumns } from '../gateway/core/outbox.js';
import { qualityCode } from '../gateway/core/reading.js';
import { AckTracker } from './ack-tracker.js';
import { type BrokerSettings, clientOptions, redactUrl } from './connection.js';
import { SYNC_DEFAULTS } from './defaults.js';
import { type CommandTrust, Downlink } from './downlink.js';
import { type SyncLogger, silentLogger } from './log.js';
import { backoffDelay, TokenBucket } from './pacing.js';
import { EVENTS_VERSION, encodeEvents } from './protocol/events.js';
import { encodeColumns } from './protocol/native.js';
import { encodeStatus, STATUS_VERSION, type StatusMessage } from './protocol/status.js';
import { type GatewayTopics, topicsFor } from './protocol/topics.js';

export const SYNC_FORMATS = ['native'] as const;

export interface SyncAgentOptions {
  gatewayId: string;
  /** the store, seen through the outbox interface (readings and cursors) */
  outbox: Outbox;
  /** events to publish on `events` (gaps, command audit…); optional */
  events?: EventOutbox;
  /** where `cmd` messages go; without one every command is answered BUSY */
  commands?: CommandExecutor;
  /** where the city's `config` messages go (gateway/remote-config); without one the topic is not subscribed */
  onConfig?: (payload: Buffer) => void;
  /** the city's Ed25519 keys pinned on this gateway; without them every `cmd` is refused */
  commandTrust?: CommandTrust;
  clock?: Pick<Clock, 'wallNow' | 'monoNow'>;
  log?: SyncLogger;
  /** software version, shown in `status` */
  version?: string;

  url: string;
  clientId?: string;
  tls?: { ca?: string; cert?: string; key?: string };
  username?: string;
  passwordFile?: string;
  /** only 'native' for now */
  format?: string;

  batchMaxReadings?: number;
  batchMaxBytes?: number;
  batchMaxDelayMs?: number;
  /** backlog drain pace, readings/s */
  backlogRate?: number;
  inflightWindow?: number;
  watchdogMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  connectTimeoutMs?: number;
  keepaliveS?: number;
  statusIntervalMs?: number;
  sessionExpiryS?: number;
  /** durable cursor names in the outbox (defaults match the store's) */
  cursorName?: string;
  eventsCursorName?: string;
  /** how often the agent looks for new readings, due batches and a stalled link (ms) */
  tickMs?: number;
}

export interface SyncStatus {
  connected: boolean;
  /** seqs stored and not yet acknowledged by the broker */
  backlog: number;
  /** age of the oldest unacknowledged reading, null when nothing is waiting */
  oldestUnsentAgeS: number | null;
  /** wall ms of the last PUBACK, null before the first */
  lastAckAt: number | null;
  /** telemetry batches published and not yet acknowledged */
  inflight: number;
  /** the durable cursor: every seq at or below it is acknowledged */
  cursor: number;
  lastSeq: number;
  /** events recorded and not yet acknowledged */
  eventsBacklog: number;
  /** the last connection problem, null once connected */
  lastError: string | null;
  /** successful connections since start */
  connects: number;
}

interface Batch {
  kind: 'live' | 'backlog';
  first: number;
  last: number;
  count: number;
}

type MqttConnect = (url: string, opts: IClientOptions) => MqttClient;

const DEFAULT_CURSOR = 'sync';
const DEFAULT_EVENTS_CURSOR = 'sync-events';
const STOP_GRACE_MS = 2000;

/**
 * The sync agent: outbox → batches → MQTT (QoS 1) → PUBACK → durable cursor.
 *
 * mqtt.js never holds the truth. A fresh client is made for every connection, publishes happen only
 * while connected, nothing is queued offline, and when a connection ends whatever was in flight is
 * forgotten and read again from SQLite, starting at the durable cursor, on the next connection.
 */
export class SyncAgent {
  private readonly o: Required<
    Omit<
      SyncAgentOptions,
      'events' | 'commands' | 'clock' | 'log' | 'tls' | 'username' | 'passwordFile' | 'clientId' | 'onConfig'
    >
  >;
  private readonly topics: GatewayTopics;
  private readonly log: SyncLogger;
  private readonly clock: Pick<Clock, 'wallNow' | 'monoNow'>;
  private readonly broker: BrokerSettings;
  private readonly downlink: Downlink;

  private connectFn: MqttConnect | null = null;
  private client: MqttClient | null = null;
  private gen = 0;
  private connected = false;
  private running = false;
  private attempt = 0;
  private connects = 0;
  private lastError: string | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;

  private tracker: AckTracker;
  private readonly inflight = new Map<number, Batch>();
  private nextBatchId = 1;
  /** backlog: seqs backlogNext..backlogEnd, paced; live: liveNext.., sent first */
  private backlogNext = 1;
  private backlogEnd = 0;
  private liveNext = 1;
  private liveSince: number | null = null;
  private flushing = false;
  private readonly bucket: TokenBucket;
  private eventsCursor: number;
  private eventsInflight = false;
  private pendingResults: Buffer[] = [];
  private lastAckAt: number | null = null;
  private lastProgress = 0;
  private nextStatusAt = 0;
  private pumping = false;

  constructor(private readonly opts: SyncAgentOptions) {
    const format = opts.format ?? 'native';
    if (!(SYNC_FORMATS as readonly string[]).includes(format)) {
      throw new LangbiangError(
        'CONFIG_INVALID',
        `sync.format: "${format}" is not supported yet; this release speaks only "native" (see docs/protocol.md)`,
      );
    }
    if (!opts.gatewayId) throw new LangbiangError('CONFIG_INVALID', 'sync: gateway id is missing');
    this.o = {
      gatewayId: opts.gatewayId,
      outbox: opts.outbox,
      commandTrust: opts.commandTrust ?? { keys: new Map() },
      version: opts.version ?? '0.0.0',
      url: opts.url,
      format,
      batchMaxReadings: opts.batchMaxReadings ?? SYNC_DEFAULTS.batchMaxReadings,
      batchMaxBytes: opts.batchMaxBytes ?? SYNC_DEFAULTS.batchMaxBytes,
      batchMaxDelayMs: opts.batchMaxDelayMs ?? SYNC_DEFAULTS.batchMaxDelayMs,
      backlogRate: opts.backlogRate ?? SYNC_DEFAULTS.backlogRate,
      inflightWindow: Math.max(1, opts.inflightWindow ?? SYNC_DEFAULTS.inflightWindow),
      watchdogMs: opts.watchdogMs ?? SYNC_DEFAULTS.watchdogMs,
      reconnectMinMs: opts.reconnectMinMs ?? SYNC_DEFAULTS.reconnectMinMs,
      reconnectMaxMs: opts.reconnectMaxMs ?? SYNC_DEFAULTS.reconnectMaxMs,
      connectTimeoutMs: opts.connectTimeoutMs ?? SYNC_DEFAULTS.connectTimeoutMs,
      keepaliveS: opts.keepaliveS ?? SYNC_DEFAULTS.keepaliveS,
      statusIntervalMs: opts.statusIntervalMs ?? SYNC_DEFAULTS.statusIntervalMs,
      sessionExpiryS: opts.sessionExpiryS ?? SYNC_DEFAULTS.sessionExpiryS,
      cursorName: opts.cursorName ?? DEFAULT_CURSOR,
      eventsCursorName: opts.eventsCursorName ?? DEFAULT_EVENTS_CURSOR,
      tickMs: opts.tickMs ?? 200,
    };
    this.topics = topicsFor(opts.gatewayId);
    this.log = opts.log ?? silentLogger;
    this.clock = opts.clock ?? { wallNow: () => Date.now(), monoNow: () => performance.now() };
    this.broker = {
      url: opts.url,
      clientId: opts.clientId ?? `langbiang-${opts.gatewayId}`,
      keepaliveS: this.o.keepaliveS,
      connectTimeoutMs: this.o.connectTimeoutMs,
      sessionExpiryS: this.o.sessionExpiryS,
    };
    if (opts.tls) this.broker.tls = opts.tls;
    if (opts.username) this.broker.username = opts.username;
    if (opts.passwordFile) this.broker.passwordFile = opts.passwordFile;
    const capacity = Math.max(1, Math.min(this.o.batchMaxReadings, this.o.backlogRate));
    this.bucket = new TokenBucket(this.o.backlogRate, capacity, this.clock.monoNow());
    this.tracker = new AckTracker(opts.outbox.getCursor(this.o.cursorName));
    this.eventsCursor = opts.outbox.getCursor(this.o.eventsCursorName);
    const executor: CommandExecutor = opts.commands ?? {
      execute: async (req) => ({
        id: req.id,
        ok: false,
        code: 'BUSY',
        message: 'no command router',
        ts: this.clock.wallNow(),
      }),
    };
    this.downlink = new Downlink(
      executor,
      (p) => this.publishResult(p),
      this.log,
      () => this.clock.wallNow(),
      { ...this.o.commandTrust, gatewayId: opts.gatewayId },
    );
  }

  /** Starts connecting in the background; never waits for the broker. */
  async start(): Promise<void> {
    if (this.running) return;
    const mqtt = await import('mqtt');
    this.connectFn = (mqtt.connect ??
      (mqtt as unknown as { default: { connect: MqttConnect } }).default.connect) as MqttConnect;
    this.running = true;
    this.tracker = new AckTracker(this.o.outbox.getCursor(this.o.cursorName));
    this.eventsCursor = this.o.outbox.getCursor(this.o.eventsCursorName);
    this.tickTimer = setInterval(() => this.tick(), this.o.tickMs);
    this.tickTimer.unref();
    this.log.info(
      { url: redactUrl(this.broker.url), clientId: this.broker.clientId, cursor: this.tracker.cursor },
      'sync agent started',
    );
    this.openClient();
  }

  /** New readings were committed: look now rather than at the next tick. */
  wake(): void {
    if (this.running) this.pump();
  }

  /**
   * Stops: sends what is pending now, waits briefly for the acks, leaves `status` as offline and
   * disconnects cleanly (so the broker does not publish the LWT).
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.tickTimer = null;
    this.reconnectTimer = null;
    const client = this.client;
    if (client && this.connected) {
      this.flushing = true;
      const deadline = Date.now() + STOP_GRACE_MS;
      while (Date.now() < deadline && this.connected) {
        this.pump(true);
        if (this.inflight.size === 0 && !this.eventsInflight && !this.liveDue(this.o.outbox.lastSeq(), true)) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const offline = encodeStatus(this.statusMessage('offline', 'shutdown'));
      await withTimeout(
        new Promise<void>((resolve) =>
          client.publish(this.topics.status, offline, { qos: 1, retain: true }, () => resolve()),
        ),
        1000,
      );
      await withTimeout(new Promise<void>((resolve) => client.end(false, {}, () => resolve())), 1000);
    }
    this.dropClient();
    this.log.info({ cursor: this.tracker.cursor }, 'sync agent stopped');
  }

  status(): SyncStatus {
    const lastSeq = this.o.outbox.lastSeq();
    const cursor = this.tracker.cursor;
    let oldest: number | null = null;
    if (lastSeq > cursor) {
      const after = this.tracker.nextUnacked(cursor + 1) - 1;
      const [r] = this.o.outbox.readAfter(after, 1);
      if (r) oldest = Math.max(0, Math.round((this.clock.wallNow() - r.ts) / 1000));
    }
    const events = this.opts.events;
    return {
      connected: this.connected,
      backlog: Math.max(0, lastSeq - cursor - this.tracker.ackedAhead()),
      oldestUnsentAgeS: oldest,
      lastAckAt: this.lastAckAt,
      inflight: this.inflight.size,
      cursor,
      lastSeq,
      eventsBacklog: events ? Math.max(0, events.lastEventId() - this.eventsCursor) : 0,
      lastError: this.lastError,
      connects: this.connects,
    };
  }

  // ---- connection -------------------------------------------------------------------------------

  private openClient(): void {
    if (!this.running || !this.connectFn) return;
    const will = encodeStatus(this.statusMessage('offline', 'lwt'));
    let options: IClientOptions;
    try {
      options = clientOptions(this.broker, { topic: this.topics.status, payload: will });
    } catch (err) {
      this.lastError = describeError(err);
      this.log.error({ err: this.lastError }, 'cannot connect to the broker');
      this.scheduleReconnect();
      return;
    }
    const gen = ++this.gen;
    let client: MqttClient;
    try {
      client = this.connectFn(this.broker.url, options);
    } catch (err) {
      this.lastError = describeError(err);
      this.log.error({ err: this.lastError }, 'cannot connect to the broker');
      this.scheduleReconnect();
      return;
    }
    this.client = client;
    client.on('connect', () => {
      if (gen === this.gen) this.onConnect(client);
    });
    client.on('message', (topic, payload) => {
      if (gen === this.gen && topic === this.topics.cmd) this.downlink.handle(payload);
      else if (gen === this.gen && topic === this.topics.config && this.opts.onConfig) {
        try {
          this.opts.onConfig(payload);
        } catch (err) {
          this.log.error({ err: describeError(err) }, 'config message handling failed');
        }
      }
    });
    client.on('error', (err) => {
      if (gen !== this.gen) return;
      this.lastError = describeError(err);
      if (!this.connected) this.onLost(gen, 'connect failed');
    });
    client.on('disconnect', (packet) => {
      if (gen === this.gen) this.lastError = `broker sent DISCONNECT (reason ${packet.reasonCode ?? 0})`;
    });
    client.on('close', () => {
      if (gen === this.gen) this.onLost(gen, 'connection closed');
    });
  }

  private onConnect(client: MqttClient): void {
    this.connected = true;
    this.connects++;
    this.attempt = 0;
    this.lastError = null;
    this.inflight.clear();
    this.eventsInflight = false;
    // Everything up to now is backlog (paced); what is stored from here on is live.
    const last = this.o.outbox.lastSeq();
    this.backlogNext = this.tracker.cursor + 1;
    this.backlogEnd = last;
    this.liveNext = last + 1;
    this.liveSince = null;
    this.lastProgress = this.clock.monoNow();
    this.log.info(
      { url: redactUrl(this.broker.url), backlog: this.status().backlog, connects: this.connects },
      'connected to the broker',
    );
    client.subscribe(this.topics.cmd, { qos: 1 }, (err) => {
      if (err) this.log.warn({ err: describeError(err) }, 'cmd subscription refused');
    });
    if (this.opts.onConfig) {
      client.subscribe(this.topics.config, { qos: 1 }, (err) => {
        if (err) this.log.warn({ err: describeError(err) }, 'config subscription refused');
      });
    }
    this.publishStatus();
    const results = this.pendingResults;
    this.pendingResults = [];
    for (const r of results) this.publishResult(r);
    this.pump();
  }

  /** The connection is gone (or must go): forget in-flight work, reconnect later. */
  private onLost(gen: number, why: string): void {
    if (gen !== this.gen) return;
    const was = this.connected;
    this.dropClient();
    if (was) this.log.warn({ why, err: this.lastError, cursor: this.tracker.cursor }, 'broker connection lost');
    this.scheduleReconnect();
  }

  private dropClient(): void {
    this.gen++;
    this.connected = false;
    this.inflight.clear();
    this.eventsInflight = false;
    this.flushing = false;
    const c = this.client;
    this.client = null;
    if (c) {
      c.removeAllListeners();
      // a late socket error on a dropped client must not become an uncaught exception
      c.on('error', () => {});
      c.end(true);
    }
  }

  private scheduleReconnect(): void {
    if (!this.running || this.reconnectTimer) return;
    const delay = backoffDelay(this.attempt++, this.o.reconnectMinMs, this.o.reconnectMaxMs);
    this.log.info({ delayMs: delay, attempt: this.attempt, err: this.lastError }, 'reconnecting to the broker later');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.openClient();
    }, delay);
    this.reconnectTimer.unref();
  }

  private tick(): void {
    if (!this.running) return;
    const now = this.clock.monoNow();
    if (
      this.connected &&
      (this.inflight.size > 0 || this.eventsInflight) &&
      now - this.lastProgress > this.o.watchdogMs
    ) {
      this.lastError = `no PUBACK for ${Math.round((now - this.lastProgress) / 1000)} s with work in flight`;
      this.log.warn({ err: this.lastError, inflight: this.inflight.size }, 'sync stalled; rebuilding the MQTT client');
      this.attempt = 0;
      this.onLost(this.gen, 'watchdog');
      return;
    }
    if (this.connected && now >= this.nextStatusAt) this.publishStatus();
    this.pump();
  }

  // ---- sending ----------------------------------------------------------------------------------

  private liveDue(lastSeq: number, force: boolean): boolean {
    if (lastSeq < this.liveNext) return false;
    const now = this.clock.monoNow();
    if (this.liveSince === null) this.liveSince = now;
    return (
      force ||
      this.flushing ||
      lastSeq - this.liveNext + 1 >= this.o.batchMaxReadings ||
      now - this.liveSince >= this.o.batchMaxDelayMs
    );
  }

  private pump(force = false): void {
    if (!this.connected || !this.client || this.pumping) return;
    this.pumping = true;
    try {
      this.pumpEvents();
      const window = this.o.inflightWindow;
      // Backlog never takes the whole window: a live batch always finds a free slot.
      const backlogSlots = Math.max(1, window - 2);
      for (let guard = 0; guard < 1000 && this.connected && this.inflight.size < window; guard++) {
        const lastSeq = this.o.outbox.lastSeq();
        if (this.liveDue(lastSeq, force)) {
          const before = this.liveNext;
          this.sendRange('live', lastSeq, this.o.batchMaxReadings);
          if (this.liveNext > lastSeq) this.liveSince = null;
          if (this.liveNext !== before) continue;
        }
        if (this.backlogNext <= this.backlogEnd && this.backlogInflight() < backlogSlots) {
          const now = this.clock.monoNow();
          const want = Math.min(this.bucket.capacity, this.backlogEnd - this.backlogNext + 1);
          if (this.bucket.available(now) >= want) {
            const before = this.backlogNext;
            const sent = this.sendRange('backlog', this.backlogEnd, want);
            this.bucket.take(sent, now);
            if (this.backlogNext !== before) continue;
          }
        }
        break;
      }
    } catch (err) {
      // A read or encode failure must not kill the agent: try again at the next tick.
      this.log.error({ err: describeError(err) }, 'sync pump failed');
    } finally {
      this.pumping = false;
    }
  }

  private backlogInflight(): number {
    let n = 0;
    for (const b of this.inflight.values()) if (b.kind === 'backlog') n++;
    return n;
  }

  /**
   * Publishes one batch from the live or backlog pointer up to `to`; returns the readings sent.
   * Seqs without a reading (dropped by a cap, or never written) are covered by the batch's span, or
   * acknowledged at once when nothing else is left before `to`: a gap event accounts for them.
   */
  private sendRange(kind: Batch['kind'], to: number, maxCount: number): number {
    const client = this.client!;
    const ptr = kind === 'live' ? this.liveNext : this.backlogNext;
    const from = this.tracker.nextUnacked(ptr);
    const setPtr = (v: number) => {
      if (kind === 'live') this.liveNext = v;
      else this.backlogNext = v;
    };
    if (from > to) {
      setPtr(Math.max(ptr, from));
      return 0;
    }
    const hi = Math.min(to, this.tracker.nextAckedAfter(from) - 1);
    const cols = this.readColumns(from - 1, maxCount, hi);
    if (cols.count === 0) {
      this.ackLocally(from, hi);
      setPtr(hi + 1);
      return 0;
    }
    let n = cols.count;
    let payload: Buffer;
    // Live messages are small and cross the cellular link often: the best deflate pays. A backlog
    // message holds thousands of readings, where level 6 is nearly as small and much faster.
    const level = kind === 'live' ? 9 : 6;
    for (;;) {
      payload = encodeColumns(
        {
          epoch: this.o.outbox.epoch,
          firstSeq: from,
          lastSeq: cols.seqs[n - 1]!,
          count: n,
          seqs: cols.seqs,
          series: cols.series,
          names: cols.names,
          ts: cols.ts,
          quality: cols.quality,
          values: cols.values,
        },
        { level },
      );
      if (payload.length <= this.o.batchMaxBytes || n === 1) break;
      n = Math.ceil(n / 2);
    }
    const last = cols.seqs[n - 1]!;
    const id = this.nextBatchId++;
    const gen = this.gen;
    if (this.inflight.size === 0 && !this.eventsInflight) this.lastProgress = this.clock.monoNow();
    this.inflight.set(id, { kind, first: from, last, count: n });
    setPtr(last + 1);
    client.publish(this.topics.telemetry, payload, { qos: 1 }, (err) => this.onTelemetryAck(gen, id, err));
    return n;
  }

  /** Readings after `after` up to `maxSeq`, as columns; through readAfter when the outbox has no column read. */
  private readColumns(after: number, limit: number, maxSeq: number): ReadingColumns {
    const outbox = this.o.outbox;
    if (outbox.readColumnsAfter) return outbox.readColumnsAfter(after, limit, maxSeq);
    const rows = outbox.readAfter(after, limit).filter((r) => r.seq <= maxSeq);
    const names = new Map<number, { device: string; point: string; unit: string | null }>();
    const keys = new Map<string, number>();
    const series = rows.map((r) => {
      const key = `${r.device}\u0000${r.point}\u0000${r.unit ?? ''}`;
      let id = keys.get(key);
      if (id === undefined) {
        id = keys.size;
        keys.set(key, id);
        names.set(id, { device: r.device, point: r.point, unit: r.unit ? r.unit : null });
      }
      return id;
    });
    return {
      count: rows.length,
      seqs: rows.map((r) => r.seq),
      series,
      names: (id) => names.get(id)!,
      ts: rows.map((r) => r.ts),
      quality: rows.map((r) => qualityCode(r.quality)),
      values: rows.map((r) => r.value),
    };
  }

  private onTelemetryAck(gen: number, id: number, err: Error | undefined): void {
    // An ack of an earlier connection is ignored: that batch is being re-sent from SQLite anyway.
    if (gen !== this.gen) return;
    const b = this.inflight.get(id);
    if (!b) return;
    this.inflight.delete(id);
    if (err) {
      this.lastError = `broker refused a telemetry batch: ${describeError(err)}`;
      this.log.warn({ err: this.lastError, first: b.first, last: b.last }, 'publish failed; reconnecting');
      this.onLost(gen, 'publish refused');
      return;
    }
    this.lastAckAt = this.clock.wallNow();
    this.lastProgress = this.clock.monoNow();
    this.ackLocally(b.first, b.last);
    this.pump();
  }

  private ackLocally(first: number, last: number): void {
    if (this.tracker.ack(first, last)) this.o.outbox.setCursor(this.o.cursorName, this.tracker.cursor);
  }

  private pumpEvents(): void {
    const events = this.opts.events;
    if (!events || this.eventsInflight || !this.client) return;
    if (events.lastEventId() <= this.eventsCursor) return;
    const list = events.eventsAfter(this.eventsCursor, SYNC_DEFAULTS.eventsBatchMax);
    if (list.length === 0) {
      // pruned below the cursor (never expected): nothing to send up to the newest id
      this.eventsCursor = events.lastEventId();
      this.o.outbox.setCursor(this.o.eventsCursorName, this.eventsCursor);
      return;
    }
    const payload = encodeEvents({
      v: EVENTS_VERSION,
      gateway: this.o.gatewayId,
      epoch: this.o.outbox.epoch,
      events: list,
    });
    const lastId = list[list.length - 1]!.id;
    const gen = this.gen;
    if (this.inflight.size === 0) this.lastProgress = this.clock.monoNow();
    this.eventsInflight = true;
    this.client.publish(this.topics.events, payload, { qos: 1 }, (err) => {
      if (gen !== this.gen) return;
      this.eventsInflight = false;
      if (err) {
        this.lastError = `broker refused an events batch: ${describeError(err)}`;
        this.onLost(gen, 'publish refused');
        return;
      }
      this.lastAckAt = this.clock.wallNow();
      this.lastProgress = this.clock.monoNow();
      this.eventsCursor = lastId;
      this.o.outbox.setCursor(this.o.eventsCursorName, lastId);
      this.pump();
    });
  }

  private statusMessage(state: 'online' | 'offline', reason?: 'lwt' | 'shutdown'): StatusMessage {
    const msg: StatusMessage = {
      v: STATUS_VERSION,
      gateway: this.o.gatewayId,
      epoch: this.o.outbox.epoch,
      state,
      ts: this.clock.wallNow(),
      version: this.o.version,
    };
    if (reason) msg.reason = reason;
    if (reason !== 'lwt') {
      const s = this.status();
      msg.backlog = s.backlog;
      msg.oldestUnsentAgeS = s.oldestUnsentAgeS;
      msg.lastAckAt = s.lastAckAt;
    }
    return msg;
  }

  private publishStatus(): void {
    if (!this.client || !this.connected) return;
    this.nextStatusAt = this.clock.monoNow() + this.o.statusIntervalMs;
    this.client.publish(this.topics.status, encodeStatus(this.statusMessage('online')), { qos: 1, retain: true });
  }

  private publishResult(payload: Buffer): void {
    if (this.client && this.connected) {
      this.client.publish(this.topics.cmdResult, payload, { qos: 1 });
    } else if (this.pendingResults.length < 100) {
      // sent on the next connection; beyond 100 the city re-asks and gets the router's stored result
      this.pendingResults.push(payload);
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      () => {
        clearTimeout(t);
        resolve(undefined);
      },
    );
  });
}
