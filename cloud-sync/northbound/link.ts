import type { IClientOptions, MqttClient } from 'mqtt';
import type { Clock } from '../../gateway/core/clock.js';
import { describeError, LangbiangError } from '../../gateway/core/errors.js';
import type { EventOutbox, GatewayEventRecord, Outbox, ReadingColumns } from '../../gateway/core/outbox.js';
import { AckTracker } from '../ack-tracker.js';
import { type BrokerSettings, clientOptions, redactUrl } from '../connection.js';
import { SYNC_DEFAULTS } from '../defaults.js';
import { withTimeout } from '../link.js';
import { type SyncLogger, silentLogger } from '../log.js';
import { loadMqttConnect, type MqttConnect } from '../mqtt-connect.js';
import { backoffDelay, TokenBucket } from '../pacing.js';
import { readColumnsOf } from '../telemetry-pump.js';
import type { NorthboundAgent, SyncStatus } from './agent.js';

/** One MQTT message a format wants published (always QoS 1: the cursor moves on PUBACK). */
export interface NorthboundMessage {
  topic: string;
  payload: Buffer;
}

/** What a format may do on the live connection. */
export interface LinkSession {
  publish(msg: NorthboundMessage): void;
  subscribe(topic: string): void;
}

/** Messages for some readings, not yet sent: `commit` is called only if they are published. */
export interface EncodedBatch {
  messages: NorthboundMessage[];
  /** the format's state moves (sequence numbers, metrics born) only for what goes out */
  commit(): void;
}

/**
 * A northbound format: how readings, gap events and the session's announcements look on the wire,
 * and what it does with messages from the platform. The link does the rest (connection, cursor,
 * pacing, acks), the same way for every format.
 */
export interface NorthboundFormat {
  /** the MQTT options of one connection, from the common ones (credentials, protocol, will) */
  connectOptions(common: IClientOptions): IClientOptions;
  /** a new connection is up: announce (births, device connects) and subscribe, before any data */
  onSession(s: LinkSession): void;
  /** readings → messages; historical for backlog (stored before this connection) */
  encodeReadings(cols: ReadingColumns, count: number, historical: boolean): EncodedBatch;
  /** events → messages (only gaps have a carrier; others are passed over and return []) */
  encodeEvents(events: GatewayEventRecord[]): EncodedBatch;
  onMessage(topic: string, payload: Buffer, s: LinkSession): void;
  /** published, acknowledged, before a clean disconnect */
  farewell(): NorthboundMessage[];
}

export interface LinkOptions {
  gatewayId: string;
  outbox: Outbox;
  events?: EventOutbox;
  clock?: Pick<Clock, 'wallNow' | 'monoNow'>;
  log?: SyncLogger;
  url: string;
  clientId?: string;
  tls?: { ca?: string; cert?: string; key?: string };
  username?: string;
  passwordFile?: string;
  batchMaxReadings?: number;
  batchMaxBytes?: number;
  batchMaxDelayMs?: number;
  backlogRate?: number;
  inflightWindow?: number;
  watchdogMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  connectTimeoutMs?: number;
  keepaliveS?: number;
  cursorName?: string;
  eventsCursorName?: string;
  /**
   * The confirmed cursors (the store drops only confirmed readings without a gap event). These
   * formats have no end-to-end acknowledgement: PUBACK confirms, so they follow the delivered ones.
   */
  confirmedCursorName?: string;
  eventsConfirmedCursorName?: string;
  tickMs?: number;
}

interface Batch {
  kind: 'live' | 'backlog';
  first: number;
  last: number;
  /** messages of the batch not yet acknowledged */
  pending: number;
}

const STOP_GRACE_MS = 2000;

/**
 * The MQTT link the standard formats share: outbox → format → MQTT QoS 1 → PUBACK → durable cursor.
 * Like the native agent, mqtt.js never holds the truth: a fresh client per connection, nothing
 * queued offline, and whatever was in flight when a connection ends is read again from SQLite.
 * A batch may be several messages (one per Sparkplug device): it counts as acknowledged when
 * every one of them is.
 */
export class NorthboundLink implements NorthboundAgent {
  private readonly log: SyncLogger;
  private readonly clock: Pick<Clock, 'wallNow' | 'monoNow'>;
  private readonly broker: BrokerSettings;
  private readonly n: {
    batchMaxReadings: number;
    batchMaxBytes: number;
    batchMaxDelayMs: number;
    inflightWindow: number;
    watchdogMs: number;
    reconnectMinMs: number;
    reconnectMaxMs: number;
    cursorName: string;
    eventsCursorName: string;
    confirmedCursorName: string;
    eventsConfirmedCursorName: string;
    tickMs: number;
  };
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
  private backlogNext = 1;
  private backlogEnd = 0;
  private liveNext = 1;
  private liveSince: number | null = null;
  private flushing = false;
  private readonly bucket: TokenBucket;
  private eventsCursor: number;
  private eventsPending = 0;
  private lastAckAt: number | null = null;
  private lastProgress = 0;
  private pumping = false;

  constructor(
    private readonly o: LinkOptions,
    private readonly format: NorthboundFormat,
  ) {
    if (!o.gatewayId) throw new LangbiangError('CONFIG_INVALID', 'sync: gateway id is missing');
    this.log = o.log ?? silentLogger;
    this.clock = o.clock ?? { wallNow: () => Date.now(), monoNow: () => performance.now() };
    this.n = {
      batchMaxReadings: o.batchMaxReadings ?? SYNC_DEFAULTS.batchMaxReadings,
      batchMaxBytes: o.batchMaxBytes ?? SYNC_DEFAULTS.batchMaxBytes,
      batchMaxDelayMs: o.batchMaxDelayMs ?? SYNC_DEFAULTS.batchMaxDelayMs,
      inflightWindow: Math.max(1, o.inflightWindow ?? SYNC_DEFAULTS.inflightWindow),
      watchdogMs: o.watchdogMs ?? SYNC_DEFAULTS.watchdogMs,
      reconnectMinMs: o.reconnectMinMs ?? SYNC_DEFAULTS.reconnectMinMs,
      reconnectMaxMs: o.reconnectMaxMs ?? SYNC_DEFAULTS.reconnectMaxMs,
      cursorName: o.cursorName ?? 'sync',
      eventsCursorName: o.eventsCursorName ?? 'sync-events',
      confirmedCursorName: o.confirmedCursorName ?? 'sync-confirmed',
      eventsConfirmedCursorName: o.eventsConfirmedCursorName ?? 'sync-events-confirmed',
      tickMs: o.tickMs ?? 200,
    };
    this.broker = {
      url: o.url,
      clientId: o.clientId ?? `langbiang-${o.gatewayId}`,
      keepaliveS: o.keepaliveS ?? SYNC_DEFAULTS.keepaliveS,
      connectTimeoutMs: o.connectTimeoutMs ?? SYNC_DEFAULTS.connectTimeoutMs,
      sessionExpiryS: 0,
    };
    if (o.tls) this.broker.tls = o.tls;
    if (o.username) this.broker.username = o.username;
    if (o.passwordFile) this.broker.passwordFile = o.passwordFile;
    const rate = o.backlogRate ?? SYNC_DEFAULTS.backlogRate;
    this.bucket = new TokenBucket(rate, Math.max(1, Math.min(this.n.batchMaxReadings, rate)), this.clock.monoNow());
    this.tracker = new AckTracker(o.outbox.getCursor(this.n.cursorName));
    this.eventsCursor = o.outbox.getCursor(this.n.eventsCursorName);
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.connectFn = await loadMqttConnect(this.broker.url);
    this.running = true;
    this.tracker = new AckTracker(this.o.outbox.getCursor(this.n.cursorName));
    this.eventsCursor = this.o.outbox.getCursor(this.n.eventsCursorName);
    this.tickTimer = setInterval(() => this.tick(), this.n.tickMs);
    this.tickTimer.unref();
    this.log.info({ url: redactUrl(this.broker.url), cursor: this.tracker.cursor }, 'sync agent started');
    this.openClient();
  }

  wake(): void {
    if (this.running) this.pump();
  }

  /** Sends what is pending, publishes the format's farewell, disconnects normally. */
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
        if (this.inflight.size === 0 && this.eventsPending === 0 && !this.liveDue(this.o.outbox.lastSeq(), true)) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      for (const m of this.format.farewell()) {
        await withTimeout(
          new Promise<void>((resolve) => client.publish(m.topic, m.payload, { qos: 1 }, () => resolve())),
          1000,
        );
      }
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
      const [r] = this.o.outbox.readAfter(this.tracker.nextUnacked(cursor + 1) - 1, 1);
      if (r) oldest = Math.max(0, Math.round((this.clock.wallNow() - r.ts) / 1000));
    }
    const events = this.o.events;
    return {
      connected: this.connected,
      backlog: Math.max(0, lastSeq - cursor - this.tracker.ackedAhead()),
      oldestUnsentAgeS: oldest,
      lastAckAt: this.lastAckAt,
      inflight: this.inflight.size,
      cursor,
      lastSeq,
      eventsBacklog: events ? Math.max(0, events.lastEventId() - this.eventsCursor) : 0,
      // no end-to-end acknowledgement in these formats: what the broker has counts as confirmed
      confirmMode: 'broker',
      confirmFallback: false,
      confirmed: cursor,
      unconfirmed: Math.max(0, lastSeq - cursor),
      oldestUnconfirmedAgeS: oldest,
      eventsUnconfirmed: events ? Math.max(0, events.lastEventId() - this.eventsCursor) : 0,
      lastConfirmAt: this.lastAckAt,
      resends: 0,
      lastError: this.lastError,
      connects: this.connects,
    };
  }

  /** Drops the connection as if the network had failed (tests, and the watchdog). */
  breakConnection(why: string): void {
    this.lastError = why;
    this.onLost(this.gen, why);
  }

  // ---- connection -------------------------------------------------------------------------------

  private openClient(): void {
    if (!this.running || !this.connectFn) return;
    let options: IClientOptions;
    let client: MqttClient;
    const gen = ++this.gen;
    try {
      // the will given here is the native one's placeholder: each format sets its own, or none
      const common = clientOptions(this.broker, { topic: '', payload: Buffer.alloc(0) });
      delete common.will;
      options = this.format.connectOptions(common);
      client = this.connectFn(this.broker.url, options);
    } catch (err) {
      this.lastError = describeError(err);
      this.log.error({ err: this.lastError }, 'cannot connect to the broker');
      this.scheduleReconnect();
      return;
    }
    this.client = client;
    const session: LinkSession = {
      publish: (m) => {
        if (gen === this.gen && this.connected) client.publish(m.topic, m.payload, { qos: 1 });
      },
      subscribe: (topic) =>
        client.subscribe(topic, { qos: 1 }, (err) => {
          if (err) this.log.warn({ topic, err: describeError(err) }, 'subscription refused');
        }),
    };
    client.on('connect', () => {
      if (gen !== this.gen) return;
      this.onConnect();
      try {
        this.format.onSession(session);
      } catch (err) {
        this.log.error({ err: describeError(err) }, 'session announcement failed');
      }
      this.pump();
    });
    client.on('message', (topic, payload) => {
      if (gen !== this.gen) return;
      try {
        this.format.onMessage(topic, payload, session);
      } catch (err) {
        // nothing a broker delivers may throw out of here
        this.log.error({ topic, err: describeError(err) }, 'message from the platform not handled');
      }
    });
    client.on('error', (err) => {
      if (gen !== this.gen) return;
      this.lastError = describeError(err);
      if (!this.connected) this.onLost(gen, 'connect failed');
    });
    client.on('close', () => {
      if (gen === this.gen) this.onLost(gen, 'connection closed');
    });
  }

  private onConnect(): void {
    this.connected = true;
    this.connects++;
    this.attempt = 0;
    this.lastError = null;
    this.inflight.clear();
    this.eventsPending = 0;
    // Everything stored up to now is backlog (paced, marked historical); what comes after is live.
    const last = this.o.outbox.lastSeq();
    this.backlogNext = this.tracker.cursor + 1;
    this.backlogEnd = last;
    this.liveNext = last + 1;
    this.liveSince = null;
    this.lastProgress = this.clock.monoNow();
    this.log.info({ url: redactUrl(this.broker.url), connects: this.connects }, 'connected to the broker');
  }

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
    this.eventsPending = 0;
    this.flushing = false;
    const c = this.client;
    this.client = null;
    if (c) {
      c.removeAllListeners();
      c.on('error', () => {});
      c.end(true);
    }
  }

  private scheduleReconnect(): void {
    if (!this.running || this.reconnectTimer) return;
    const delay = backoffDelay(this.attempt++, this.n.reconnectMinMs, this.n.reconnectMaxMs);
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
      (this.inflight.size > 0 || this.eventsPending > 0) &&
      now - this.lastProgress > this.n.watchdogMs
    ) {
      this.attempt = 0;
      this.breakConnection(`no PUBACK for ${Math.round((now - this.lastProgress) / 1000)} s with work in flight`);
      return;
    }
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
      lastSeq - this.liveNext + 1 >= this.n.batchMaxReadings ||
      now - this.liveSince >= this.n.batchMaxDelayMs
    );
  }

  private pump(force = false): void {
    if (!this.connected || !this.client || this.pumping) return;
    this.pumping = true;
    try {
      this.pumpEvents();
      const window = this.n.inflightWindow;
      // backlog never takes the whole window: a live batch always finds a free slot
      const backlogSlots = Math.max(1, window - 2);
      for (let guard = 0; guard < 1000 && this.connected && this.inflight.size < window; guard++) {
        const lastSeq = this.o.outbox.lastSeq();
        if (this.liveDue(lastSeq, force)) {
          const before = this.liveNext;
          this.sendRange('live', lastSeq, this.n.batchMaxReadings);
          if (this.liveNext > lastSeq) this.liveSince = null;
          if (this.liveNext !== before) continue;
        }
        if (this.backlogNext <= this.backlogEnd && this.backlogInflight() < backlogSlots) {
          const now = this.clock.monoNow();
          const want = Math.min(this.bucket.capacity, this.backlogEnd - this.backlogNext + 1);
          if (this.bucket.available(now) >= want) {
            const before = this.backlogNext;
            this.bucket.take(this.sendRange('backlog', this.backlogEnd, want), now);
            if (this.backlogNext !== before) continue;
          }
        }
        break;
      }
    } catch (err) {
      // a read or encode failure must not kill the agent: try again at the next tick
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

  /** Publishes one batch from the live or backlog pointer up to `to`; returns the readings sent. */
  private sendRange(kind: Batch['kind'], to: number, maxCount: number): number {
    const client = this.client!;
    const ptr = kind === 'live' ? this.liveNext : this.backlogNext;
    const setPtr = (v: number) => {
      if (kind === 'live') this.liveNext = v;
      else this.backlogNext = v;
    };
    const from = this.tracker.nextUnacked(ptr);
    if (from > to) {
      setPtr(Math.max(ptr, from));
      return 0;
    }
    const hi = Math.min(to, this.tracker.nextAckedAfter(from) - 1);
    const cols = readColumnsOf(this.o.outbox, from - 1, maxCount, hi);
    if (cols.count === 0) {
      // seqs with no reading (dropped by a cap): a gap event accounts for them
      this.ackLocally(from, hi);
      setPtr(hi + 1);
      return 0;
    }
    let n = cols.count;
    let batch: EncodedBatch;
    for (;;) {
      batch = this.format.encodeReadings(cols, n, kind === 'backlog');
      if (n === 1 || batch.messages.every((m) => m.payload.length <= this.n.batchMaxBytes)) break;
      n = Math.ceil(n / 2);
    }
    batch.commit();
    const last = cols.seqs[n - 1]!;
    const id = this.nextBatchId++;
    const gen = this.gen;
    if (this.inflight.size === 0 && this.eventsPending === 0) this.lastProgress = this.clock.monoNow();
    this.inflight.set(id, { kind, first: from, last, pending: batch.messages.length });
    setPtr(last + 1);
    for (const m of batch.messages) {
      client.publish(m.topic, m.payload, { qos: 1 }, (err) => this.onBatchAck(gen, id, err));
    }
    return n;
  }

  private onBatchAck(gen: number, id: number, err: Error | undefined): void {
    // an ack of an earlier connection is ignored: that batch is read again from SQLite anyway
    if (gen !== this.gen) return;
    const b = this.inflight.get(id);
    if (!b) return;
    if (err) {
      this.inflight.delete(id);
      this.lastError = `broker refused a telemetry message: ${describeError(err)}`;
      this.log.warn({ err: this.lastError, first: b.first, last: b.last }, 'publish failed; reconnecting');
      this.onLost(gen, 'publish refused');
      return;
    }
    this.lastProgress = this.clock.monoNow();
    if (--b.pending > 0) return;
    this.inflight.delete(id);
    this.lastAckAt = this.clock.wallNow();
    this.ackLocally(b.first, b.last);
    this.pump();
  }

  private ackLocally(first: number, last: number): void {
    if (this.tracker.ack(first, last)) {
      this.o.outbox.setCursor(this.n.cursorName, this.tracker.cursor);
      this.o.outbox.setCursor(this.n.confirmedCursorName, this.tracker.cursor);
    }
  }

  private pumpEvents(): void {
    const events = this.o.events;
    if (!events || this.eventsPending > 0 || !this.client) return;
    if (events.lastEventId() <= this.eventsCursor) return;
    const list = events.eventsAfter(this.eventsCursor, SYNC_DEFAULTS.eventsBatchMax);
    const lastId = list.length ? list[list.length - 1]!.id : events.lastEventId();
    const batch = this.format.encodeEvents(list);
    batch.commit();
    const done = () => {
      this.eventsCursor = lastId;
      this.o.outbox.setCursor(this.n.eventsCursorName, lastId);
      this.o.outbox.setCursor(this.n.eventsConfirmedCursorName, lastId);
    };
    if (batch.messages.length === 0) {
      // nothing of these has a carrier in this format
      done();
      return;
    }
    const gen = this.gen;
    if (this.inflight.size === 0) this.lastProgress = this.clock.monoNow();
    this.eventsPending = batch.messages.length;
    for (const m of batch.messages) {
      this.client.publish(m.topic, m.payload, { qos: 1 }, (err) => {
        if (gen !== this.gen) return;
        if (err) {
          this.lastError = `broker refused an events message: ${describeError(err)}`;
          this.onLost(gen, 'publish refused');
          return;
        }
        this.lastProgress = this.clock.monoNow();
        if (--this.eventsPending > 0) return;
        this.lastAckAt = this.clock.wallNow();
        done();
        this.pump();
      });
    }
  }
}
