import type { KeyObject } from 'node:crypto';
import type { Clock } from '../gateway/core/clock.js';
import type { CommandExecutor } from '../gateway/core/command.js';
import { describeError, LangbiangError } from '../gateway/core/errors.js';
import type { EventOutbox, Outbox } from '../gateway/core/outbox.js';
import { Confirmation, type ConfirmMode, type DeliveryState } from './confirmation.js';
import type { BrokerSettings } from './connection.js';
import { SYNC_DEFAULTS } from './defaults.js';
import { type CommandTrust, Downlink } from './downlink.js';
import { EventPump } from './event-pump.js';
import { MqttLink } from './link.js';
import { type SyncLogger, silentLogger } from './log.js';
import { encodeStatus, STATUS_VERSION, type StatusMessage } from './protocol/status.js';
import { type GatewayTopics, topicsFor } from './protocol/topics.js';
import { StatusPacer } from './status-pacer.js';
import { TelemetryPump } from './telemetry-pump.js';

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
  /**
   * where the city's `update` orders go, as received (gateway/update verifies the signature and
   * does the rest); without one the topic is not subscribed
   */
  onUpdate?: (payload: Buffer) => void;
  /** the city's Ed25519 keys pinned on this gateway; without them every `cmd` is refused */
  commandTrust?: CommandTrust;
  clock?: Pick<Clock, 'wallNow' | 'monoNow'>;
  log?: SyncLogger;
  /** software version, shown in `status` */
  version?: string;
  /** the update state shown in `status` (previous release, last update's outcome) */
  updateStatus?: () => StatusMessage['update'];

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
  /** while behind (backlog, confirmation lag): the retained status this often (ms) */
  statusIntervalMs?: number;
  /** otherwise only on a meaningful change, or this long after the last one (ms; status-pacer.ts) */
  statusHeartbeatMs?: number;
  sessionExpiryS?: number;
  /**
   * Wait for the city's end-to-end acknowledgements (default true): a reading is kept until the
   * city confirms it, and sent again when confirmation stalls. false: PUBACK is confirmation.
   */
  confirm?: boolean;
  /** confirmation lagging delivery this long: send again from the confirmed cursor (ms) */
  confirmTimeoutMs?: number;
  /** no ack ever, this long after the first delivery: fall back to PUBACK, logged (ms) */
  confirmStartupWindowMs?: number;
  /** receiver keys pinned on this gateway: with one, only acks signed by it count (confirmation.ts) */
  ackKeys?: ReadonlyMap<string, KeyObject>;
  /** durable cursor names in the outbox (defaults match the store's) */
  cursorName?: string;
  eventsCursorName?: string;
  confirmedCursorName?: string;
  eventsConfirmedCursorName?: string;
  /** how often the agent looks for new readings, due batches and a stalled link (ms) */
  tickMs?: number;
}

export interface SyncStatus {
  connected: boolean;
  /** seqs stored and not yet acknowledged by the broker */
  backlog: number;
  /** age of the oldest reading not yet acknowledged by the broker, null when none */
  oldestUnsentAgeS: number | null;
  /** wall ms of the last PUBACK, null before the first */
  lastAckAt: number | null;
  /** telemetry batches published and not yet acknowledged */
  inflight: number;
  /** the delivered cursor: every seq at or below it is acknowledged by the broker */
  cursor: number;
  lastSeq: number;
  /** events recorded and not yet acknowledged by the broker */
  eventsBacklog: number;
  /** how delivery is confirmed: `city` (end-to-end acks) or `broker` (PUBACK) */
  confirmMode: ConfirmMode;
  /** `broker` only because no ack came within the start-up window */
  confirmFallback: boolean;
  /** the confirmed cursor: every seq at or below it is stored at the city (or in a gap it holds) */
  confirmed: number;
  /** seqs stored and not yet confirmed by the city */
  unconfirmed: number;
  /** age of the oldest unconfirmed reading, null when none */
  oldestUnconfirmedAgeS: number | null;
  /** events recorded and not yet confirmed */
  eventsUnconfirmed: number;
  /** wall ms of the last ack that confirmed something, null before the first */
  lastConfirmAt: number | null;
  /** times everything unconfirmed was sent again (confirmation stalled, or the broker lost the session) */
  resends: number;
  /** the last connection problem, null once connected */
  lastError: string | null;
  /** successful connections since start */
  connects: number;
}

const DEFAULT_CURSOR = 'sync';
const DEFAULT_EVENTS_CURSOR = 'sync-events';
const DEFAULT_CONFIRMED_CURSOR = 'sync-confirmed';
const DEFAULT_EVENTS_CONFIRMED_CURSOR = 'sync-events-confirmed';
/** set to 1 once this store has seen an end-to-end ack (the start-up window no longer applies) */
const ACKS_SEEN = 'sync-acks-seen';
const STOP_GRACE_MS = 2000;

type Settings = Required<
  Omit<
    SyncAgentOptions,
    | 'events'
    | 'commands'
    | 'clock'
    | 'log'
    | 'tls'
    | 'username'
    | 'passwordFile'
    | 'clientId'
    | 'onConfig'
    | 'onUpdate'
    | 'ackKeys'
  >
>;

/**
 * The sync agent composes the parts of "exactly once in effect" (README.md beside this file):
 * - the MQTT link's life cycle (link.ts): a fresh client per connection, reconnect with backoff;
 * - the telemetry pump (telemetry-pump.ts): outbox → batches → PUBACK → the delivered cursor;
 * - the events pump (event-pump.ts): gaps, audit, alarms, before telemetry;
 * - the confirmation (confirmation.ts): the city's acks → the confirmed cursors; resends;
 * - the downlink (downlink.ts): `cmd` → the command router → `cmd/result`;
 * plus the retained status and a watchdog over a link that accepts but never acknowledges.
 */
export class SyncAgent {
  private readonly o: Settings;
  private readonly topics: GatewayTopics;
  private readonly log: SyncLogger;
  private readonly clock: Pick<Clock, 'wallNow' | 'monoNow'>;
  private readonly link: MqttLink;
  private readonly downlink: Downlink;
  private telemetry: TelemetryPump;
  private events: EventPump | null;
  private confirmation: Confirmation;

  private running = false;
  private flushing = false;
  private pumping = false;
  private tickTimer: NodeJS.Timeout | null = null;
  private pendingResults: Buffer[] = [];
  private nextStatusCheckAt = 0;
  private readonly statusPacer: StatusPacer;

  constructor(private readonly opts: SyncAgentOptions) {
    const format = opts.format ?? 'native';
    if (!(SYNC_FORMATS as readonly string[]).includes(format)) {
      throw new LangbiangError(
        'CONFIG_INVALID',
        `sync.format: "${format}" is not the native format; the gateway builds ThingsBoard and Sparkplug links itself (docs/northbound.md)`,
      );
    }
    if (!opts.gatewayId) throw new LangbiangError('CONFIG_INVALID', 'sync: gateway id is missing');
    this.o = {
      gatewayId: opts.gatewayId,
      outbox: opts.outbox,
      commandTrust: opts.commandTrust ?? { keys: new Map() },
      version: opts.version ?? '0.0.0',
      updateStatus: opts.updateStatus ?? (() => undefined),
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
      statusHeartbeatMs: opts.statusHeartbeatMs ?? SYNC_DEFAULTS.statusHeartbeatMs,
      sessionExpiryS: opts.sessionExpiryS ?? SYNC_DEFAULTS.sessionExpiryS,
      confirm: opts.confirm ?? true,
      confirmTimeoutMs: opts.confirmTimeoutMs ?? SYNC_DEFAULTS.confirmTimeoutMs,
      confirmStartupWindowMs: opts.confirmStartupWindowMs ?? SYNC_DEFAULTS.confirmStartupWindowMs,
      cursorName: opts.cursorName ?? DEFAULT_CURSOR,
      eventsCursorName: opts.eventsCursorName ?? DEFAULT_EVENTS_CURSOR,
      confirmedCursorName: opts.confirmedCursorName ?? DEFAULT_CONFIRMED_CURSOR,
      eventsConfirmedCursorName: opts.eventsConfirmedCursorName ?? DEFAULT_EVENTS_CONFIRMED_CURSOR,
      tickMs: opts.tickMs ?? 200,
    };
    this.topics = topicsFor(opts.gatewayId);
    this.statusPacer = new StatusPacer({
      busyIntervalMs: this.o.statusIntervalMs,
      heartbeatMs: this.o.statusHeartbeatMs,
      // a live reading waits up to batchMaxDelay for its batch, then a round trip: beyond twice that it is late
      sendLateMs: Math.max(60_000, 2 * this.o.batchMaxDelayMs),
      // a reading unconfirmed this long is about to be sent again (confirmTimeout after its delivery)
      confirmLateMs: this.o.confirmTimeoutMs + this.o.batchMaxDelayMs,
    });
    this.log = opts.log ?? silentLogger;
    this.clock = opts.clock ?? { wallNow: () => Date.now(), monoNow: () => performance.now() };
    const broker: BrokerSettings = {
      url: opts.url,
      clientId: opts.clientId ?? `langbiang-${opts.gatewayId}`,
      keepaliveS: this.o.keepaliveS,
      connectTimeoutMs: this.o.connectTimeoutMs,
      sessionExpiryS: this.o.sessionExpiryS,
    };
    if (opts.tls) broker.tls = opts.tls;
    if (opts.username) broker.username = opts.username;
    if (opts.passwordFile) broker.passwordFile = opts.passwordFile;
    const subscriptions = [this.topics.cmd];
    if (opts.onConfig) subscriptions.push(this.topics.config);
    if (opts.onUpdate) subscriptions.push(this.topics.update);
    if (this.o.confirm) subscriptions.push(this.topics.ack);
    this.link = new MqttLink({
      broker,
      will: () => ({ topic: this.topics.status, payload: encodeStatus(this.statusMessage('offline', 'lwt')) }),
      subscriptions,
      reconnectMinMs: this.o.reconnectMinMs,
      reconnectMaxMs: this.o.reconnectMaxMs,
      log: this.log,
    });
    ({ telemetry: this.telemetry, events: this.events, confirmation: this.confirmation } = this.makeParts());
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

  /** The pumps and the confirmation, from the durable cursors (made again at each start). */
  private makeParts(): { telemetry: TelemetryPump; events: EventPump | null; confirmation: Confirmation } {
    const o = this.o;
    return {
      telemetry: new TelemetryPump({
        outbox: o.outbox,
        cursorName: o.cursorName,
        batchMaxReadings: o.batchMaxReadings,
        batchMaxBytes: o.batchMaxBytes,
        batchMaxDelayMs: o.batchMaxDelayMs,
        backlogRate: o.backlogRate,
        inflightWindow: o.inflightWindow,
        clock: this.clock,
        promptAck: () => this.confirmation.wantsPromptAck(),
      }),
      events: this.opts.events
        ? new EventPump({
            gatewayId: o.gatewayId,
            outbox: o.outbox,
            events: this.opts.events,
            cursorName: o.eventsCursorName,
            clock: this.clock,
          })
        : null,
      confirmation: new Confirmation({
        gatewayId: o.gatewayId,
        outbox: o.outbox,
        enabled: o.confirm,
        timeoutMs: o.confirmTimeoutMs,
        startupWindowMs: o.confirmStartupWindowMs,
        cursorName: o.confirmedCursorName,
        eventsCursorName: o.eventsConfirmedCursorName,
        seenName: ACKS_SEEN,
        clock: this.clock,
        log: this.log,
        ackKeys: this.opts.ackKeys,
      }),
    };
  }

  /** Starts connecting in the background; never waits for the broker. */
  async start(): Promise<void> {
    if (this.running) return;
    ({ telemetry: this.telemetry, events: this.events, confirmation: this.confirmation } = this.makeParts());
    this.running = true;
    this.tickTimer = setInterval(() => this.tick(), this.o.tickMs);
    this.tickTimer.unref();
    this.log.info(
      {
        url: this.link.url,
        clientId: this.opts.clientId ?? `langbiang-${this.o.gatewayId}`,
        cursor: this.telemetry.cursor,
        confirmed: this.confirmation.confirmed,
        confirm: this.confirmation.mode,
      },
      'sync agent started',
    );
    await this.link.start({
      up: (sessionPresent) => this.onUp(sessionPresent),
      down: () => this.onDown(),
      message: (topic, payload) => this.onMessage(topic, payload),
    });
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
    this.tickTimer = null;
    if (this.link.up) {
      this.flushing = true;
      const deadline = Date.now() + STOP_GRACE_MS;
      while (Date.now() < deadline && this.link.up) {
        this.pump(true);
        if (this.telemetry.inflightCount === 0 && !this.events?.busy && !this.telemetry.liveDue(true)) break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await this.link.stop({
      topic: this.topics.status,
      payload: encodeStatus(this.statusMessage('offline', 'shutdown')),
    });
    this.flushing = false;
    this.log.info({ cursor: this.telemetry.cursor, confirmed: this.confirmation.confirmed }, 'sync agent stopped');
  }

  status(): SyncStatus {
    const outbox = this.o.outbox;
    const lastSeq = outbox.lastSeq();
    const c = this.confirmation.status();
    let oldestUnconfirmed: number | null = null;
    if (lastSeq > c.confirmed) {
      const [r] = outbox.readAfter(c.confirmed, 1);
      if (r) oldestUnconfirmed = Math.max(0, Math.round((this.clock.wallNow() - r.ts) / 1000));
    }
    const lastEventId = this.opts.events?.lastEventId() ?? 0;
    return {
      connected: this.link.up,
      backlog: this.telemetry.backlog(),
      oldestUnsentAgeS: this.telemetry.oldestUndeliveredAgeS(),
      lastAckAt: this.telemetry.lastAckAt,
      inflight: this.telemetry.inflightCount,
      cursor: this.telemetry.cursor,
      lastSeq,
      eventsBacklog: this.events?.backlog() ?? 0,
      confirmMode: c.mode,
      confirmFallback: c.fallback,
      confirmed: c.confirmed,
      unconfirmed: Math.max(0, lastSeq - c.confirmed),
      oldestUnconfirmedAgeS: oldestUnconfirmed,
      eventsUnconfirmed: Math.max(0, lastEventId - c.eventsConfirmed),
      lastConfirmAt: c.lastConfirmAt,
      resends: c.resends,
      lastError: this.link.lastError,
      connects: this.link.connects,
    };
  }

  // ---- the link's events ------------------------------------------------------------------------

  private onUp(sessionPresent: boolean): void {
    this.telemetry.connected();
    this.events?.disconnected();
    const d = this.delivery();
    this.log.info(
      {
        url: this.link.url,
        backlog: this.telemetry.backlog(),
        unconfirmed: Math.max(0, this.o.outbox.lastSeq() - this.confirmation.confirmed),
        sessionPresent,
        connects: this.link.connects,
      },
      'connected to the broker',
    );
    if (this.confirmation.resendOnConnect(sessionPresent, d)) this.resend('the broker had no session for this gateway');
    this.statusPacer.reset();
    this.publishStatus(true);
    const results = this.pendingResults;
    this.pendingResults = [];
    for (const r of results) this.publishResult(r);
    this.pump();
  }

  private onDown(): void {
    this.telemetry.disconnected();
    this.events?.disconnected();
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (topic === this.topics.cmd) {
      this.downlink.handle(payload);
    } else if (topic === this.topics.ack) {
      if (this.confirmation.onAck(payload, this.delivery())) this.pump();
    } else if (topic === this.topics.config && this.opts.onConfig) {
      try {
        this.opts.onConfig(payload);
      } catch (err) {
        this.log.error({ err: describeError(err) }, 'config message handling failed');
      }
    } else if (topic === this.topics.update && this.opts.onUpdate) {
      try {
        this.opts.onUpdate(payload);
      } catch (err) {
        this.log.error({ err: describeError(err) }, 'update order handling failed');
      }
    }
  }

  // ---- the loop ---------------------------------------------------------------------------------

  private tick(): void {
    if (!this.running) return;
    const now = this.clock.monoNow();
    const working = this.telemetry.inflightCount > 0 || this.events?.busy === true;
    const progress = Math.max(this.telemetry.lastProgress, this.events?.lastProgress ?? 0);
    if (this.link.up && working && now - progress > this.o.watchdogMs) {
      const err = `no PUBACK for ${Math.round((now - progress) / 1000)} s with work in flight`;
      this.link.lastError = err;
      this.log.warn({ err, inflight: this.telemetry.inflightCount }, 'sync stalled; rebuilding the MQTT client');
      this.link.restart('watchdog', { resetBackoff: true });
      return;
    }
    if (this.link.up && now >= this.nextStatusCheckAt) this.publishStatus(false);
    this.confirmation.onDelivered(this.delivery());
    if (this.link.up && this.confirmation.resendDue()) this.resend('confirmation stalled');
    this.pump();
  }

  private delivery(): DeliveryState {
    return {
      readings: this.telemetry.cursor,
      events: this.events?.cursor ?? 0,
      readingsSent: this.telemetry.sentUpTo,
      eventsSent: this.events?.sentUpTo ?? 0,
    };
  }

  /** Everything unconfirmed goes again, from the confirmed cursors; the receivers' dedupe absorbs it. */
  private resend(why: string): void {
    const d = this.delivery();
    this.confirmation.resent(why, d);
    this.telemetry.rewind(this.confirmation.confirmed);
    this.events?.rewind(this.confirmation.eventsConfirmed);
  }

  private pump(force = false): void {
    if (!this.link.up || this.pumping) return;
    this.pumping = true;
    try {
      const refused = (what: string) => (err: Error) => {
        this.link.lastError = `broker refused ${what}: ${describeError(err)}`;
        this.log.warn({ err: this.link.lastError }, 'publish failed; reconnecting');
        this.link.restart('publish refused');
      };
      // Events go first: a gap or an alarm is worth more than one more batch of readings.
      this.events?.pump(
        (payload, done) => {
          this.link.publish(this.topics.events, payload, { qos: 1 }, (err) => {
            done(err);
            if (!err) this.afterDelivery();
          });
        },
        refused('an events batch'),
        this.confirmation.eventsConfirmed,
      );
      this.telemetry.pump(
        (payload, done) => {
          this.link.publish(this.topics.telemetry, payload, { qos: 1 }, (err) => {
            done(err);
            if (!err) this.afterDelivery();
          });
        },
        refused('a telemetry batch'),
        force || this.flushing,
      );
    } catch (err) {
      // A read or encode failure must not kill the agent: try again at the next tick.
      this.log.error({ err: describeError(err) }, 'sync pump failed');
    } finally {
      this.pumping = false;
    }
  }

  private afterDelivery(): void {
    this.confirmation.onDelivered(this.delivery());
    this.pump();
  }

  // ---- status and command results ----------------------------------------------------------------

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
      msg.unconfirmed = s.unconfirmed;
      msg.oldestUnconfirmedAgeS = s.oldestUnconfirmedAgeS;
      msg.lastConfirmAt = s.lastConfirmAt;
      msg.confirm = s.confirmMode;
      try {
        const update = this.o.updateStatus?.();
        if (update) msg.update = update;
      } catch {
        // the status goes out without it
      }
    }
    return msg;
  }

  /** On connecting (always), then when the pacer finds it worth its bytes (status-pacer.ts). */
  private publishStatus(always: boolean): void {
    if (!this.link.up) return;
    const now = this.clock.monoNow();
    this.nextStatusCheckAt =
      now + Math.min(SYNC_DEFAULTS.statusCheckMs, this.o.statusIntervalMs, this.o.statusHeartbeatMs);
    const msg = this.statusMessage('online');
    const resends = this.confirmation.status().resends;
    if (!always && !this.statusPacer.due(now, msg, resends)) return;
    this.statusPacer.published(now, msg, resends);
    this.link.publish(this.topics.status, encodeStatus(msg), { qos: 1, retain: true });
  }

  private publishResult(payload: Buffer): void {
    if (this.link.publish(this.topics.cmdResult, payload, { qos: 1 })) return;
    // sent on the next connection; beyond 100 the city re-asks and gets the router's stored result
    if (this.pendingResults.length < 100) this.pendingResults.push(payload);
  }
}
