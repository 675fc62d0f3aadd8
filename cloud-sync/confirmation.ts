import type { KeyObject } from 'node:crypto';
import type { Clock } from '../gateway/core/clock.js';
import { describeError } from '../gateway/core/errors.js';
import { LogLimiter } from '../gateway/core/log-limiter.js';
import type { Outbox } from '../gateway/core/outbox.js';
import { verifySigned } from '../gateway/core/signed.js';
import type { SyncLogger } from './log.js';
import {
  ACK_PACE_MS,
  ACK_SIGNATURE_LIFETIME_MS,
  type AckMessage,
  ackFromObject,
  decodeAck,
  MAX_ACK_BYTES,
} from './protocol/ack.js';

/**
 * How the gateway knows what the city holds:
 * - `city`: by the receiver's end-to-end acknowledgements (the `ack` topic) — the default;
 * - `broker`: by PUBACK alone (`sync.confirm: false`, or no ack within the start-up window).
 */
export type ConfirmMode = 'city' | 'broker';

export interface ConfirmationOptions {
  gatewayId: string;
  outbox: Outbox;
  /** wait for the city's acks (sync.confirm) */
  enabled: boolean;
  /** confirmation lagging delivery this long: send again from the confirmed cursor */
  timeoutMs: number;
  /** no ack ever seen for this store, this long after the first delivery: fall back to `broker` */
  startupWindowMs: number;
  /** durable cursors: readings (seq) and events (id) confirmed */
  cursorName: string;
  eventsCursorName: string;
  /** durable marker: set to 1 when this store has ever seen an ack */
  seenName: string;
  clock: Pick<Clock, 'wallNow' | 'monoNow'>;
  log: SyncLogger;
  /**
   * The city receivers' keys pinned on this gateway. With one, only acks signed by a pinned key
   * count: a forged ack on the broker cannot make the gateway forget what the city never stored.
   * Without, acks are taken as they come (the broker is then trusted for them: docs/operations.md).
   */
  ackKeys?: ReadonlyMap<string, KeyObject>;
}

/** What the pumps have delivered and sent, for the confirmation's decisions. */
export interface DeliveryState {
  /** delivered cursors (PUBACK) */
  readings: number;
  events: number;
  /** the highest seq / event id ever sent: the city cannot have stored more */
  readingsSent: number;
  eventsSent: number;
}

export interface ConfirmationStatus {
  mode: ConfirmMode;
  /** true when `mode` is `broker` only because no ack came within the start-up window */
  fallback: boolean;
  /** every seq at or below it is confirmed */
  confirmed: number;
  eventsConfirmed: number;
  /** wall ms of the last ack that moved a cursor, null before the first */
  lastConfirmAt: number | null;
  /** acks taken, and acks ignored (another epoch, malformed, beyond what was sent) */
  acks: number;
  acksIgnored: number;
  /** times everything unconfirmed was sent again */
  resends: number;
}

/**
 * The ack path, in one place: the city's acknowledgements move the durable confirmed cursors;
 * confirmation that lags delivery for `timeoutMs` (or a broker that lost the gateway's session)
 * asks for everything unconfirmed to be sent again; without acks it falls back to PUBACK.
 *
 * Only the confirmed cursors let the store forget a reading silently: its caps drop unconfirmed
 * readings only with a gap event.
 */
export class Confirmation {
  private readingsCursor: number;
  private eventsCursor: number;
  private everSeen: boolean;
  private fallback = false;
  /** mono ms since confirmation has lagged delivery without moving; null when it does not lag */
  private lagSince: number | null = null;
  /** mono ms of the first delivery in this process, for the start-up window */
  private firstDeliveryAt: number | null = null;
  private lastConfirmAt: number | null = null;
  private acks = 0;
  private acksIgnored = 0;
  private resends = 0;
  /** a broker flooded with forged acks must not flood the log too */
  private readonly ignoredLog = new LogLimiter(5, 60_000);

  constructor(private readonly o: ConfirmationOptions) {
    this.readingsCursor = o.outbox.getCursor(o.cursorName);
    this.eventsCursor = o.outbox.getCursor(o.eventsCursorName);
    this.everSeen = o.outbox.getCursor(o.seenName) > 0;
  }

  get mode(): ConfirmMode {
    return this.o.enabled && !this.fallback ? 'city' : 'broker';
  }

  get confirmed(): number {
    return this.readingsCursor;
  }

  get eventsConfirmed(): number {
    return this.eventsCursor;
  }

  status(): ConfirmationStatus {
    return {
      mode: this.mode,
      fallback: this.fallback,
      confirmed: this.readingsCursor,
      eventsConfirmed: this.eventsCursor,
      lastConfirmAt: this.lastConfirmAt,
      acks: this.acks,
      acksIgnored: this.acksIgnored,
      resends: this.resends,
    };
  }

  /** An `ack` message arrived. Returns true when a confirmed cursor moved. */
  onAck(payload: Buffer, d: DeliveryState): boolean {
    if (!this.o.enabled) return false;
    const ack = this.readAck(payload);
    if (!ack) return false;
    if (ack.gateway !== this.o.gatewayId || ack.epoch !== this.o.outbox.epoch) {
      // an ack for this gateway's previous database, or a stray one: nothing to confirm here
      this.acksIgnored++;
      this.o.log.debug({ gateway: ack.gateway, epoch: ack.epoch }, 'ack for another store ignored');
      return false;
    }
    this.acks++;
    if (!this.everSeen) {
      this.everSeen = true;
      this.o.outbox.setCursor(this.o.seenName, 1);
      this.o.log.info({}, 'the city acknowledges what it stores: readings are kept until it confirms them');
    }
    if (this.fallback) {
      this.fallback = false;
      this.o.log.info({}, 'end-to-end acknowledgements are back: confirming by them again');
    }
    // The city cannot hold what was never sent: anything beyond is a confused or forged ack.
    const seq = Math.min(ack.seq, d.readingsSent);
    const events = Math.min(ack.events, d.eventsSent);
    if (ack.seq > d.readingsSent || ack.events > d.eventsSent) {
      this.acksIgnored++;
      const ok = this.ignoredLog.take();
      if (ok)
        this.o.log.warn(
          {
            ackSeq: ack.seq,
            sentSeq: d.readingsSent,
            ackEvents: ack.events,
            sentEvents: d.eventsSent,
            notLogged: ok.suppressed || undefined,
          },
          'ack beyond what this gateway sent: taken only up to what was sent',
        );
    }
    const moved = this.moveTo(seq, events);
    this.updateLag(d);
    return moved;
  }

  /** The ack in a payload (signed by a pinned receiver key when one is pinned), or null when it does not count. */
  private readAck(payload: Buffer): AckMessage | null {
    const keys = this.o.ackKeys;
    try {
      // a compact ack names no gateway: it came on this gateway's own ack topic
      if (!keys || keys.size === 0) return decodeAck(payload, this.o.gatewayId);
      const v = verifySigned(payload, {
        kind: 'ack',
        gateway: this.o.gatewayId,
        keys,
        now: this.o.clock.wallNow(),
        maxLifetimeMs: ACK_SIGNATURE_LIFETIME_MS,
        maxBytes: MAX_ACK_BYTES,
        ignoreTime: true,
      });
      if (!v.ok) {
        this.ignore(`${v.reason}: ${v.message}`);
        return null;
      }
      return ackFromObject(v.body.message);
    } catch (err) {
      this.ignore(describeError(err));
      return null;
    }
  }

  private ignore(why: string): void {
    this.acksIgnored++;
    const ok = this.ignoredLog.take();
    if (ok) this.o.log.warn({ why, ignored: this.acksIgnored, notLogged: ok.suppressed || undefined }, 'ack ignored');
  }

  /**
   * The pumps' delivered cursors moved (or time passed): in `broker` mode confirmation follows
   * delivery; in `city` mode the lag clock starts when delivery gets ahead.
   */
  onDelivered(d: DeliveryState): void {
    const now = this.o.clock.monoNow();
    if (this.firstDeliveryAt === null && (d.readings > this.readingsCursor || d.events > this.eventsCursor))
      this.firstDeliveryAt = now;
    if (this.o.enabled && !this.fallback && !this.everSeen && this.firstDeliveryAt !== null) {
      if (now - this.firstDeliveryAt >= this.o.startupWindowMs) {
        this.fallback = true;
        this.o.log.warn(
          { windowS: Math.round(this.o.startupWindowMs / 1000) },
          'no end-to-end acknowledgement from the city since the first delivery: confirming by the broker (PUBACK) ' +
            'until one arrives — a message the broker loses is then lost; set sync.confirm: false if the city sends none',
        );
      }
    }
    if (this.mode === 'broker') {
      this.moveTo(d.readings, d.events);
      this.lagSince = null;
      return;
    }
    this.updateLag(d);
  }

  /**
   * In `city` mode: should the next batch ask for a prompt ack? Receivers pace acks to at most one
   * per gateway every ACK_PACE_MS unless asked: once confirmation has lagged half the timeout, ask
   * (a receiver paced slower than the protocol says must not make the gateway resend); with a
   * timeout too short for the pace, always ask.
   */
  wantsPromptAck(): boolean {
    if (this.mode !== 'city') return false;
    if (this.o.timeoutMs < 2 * ACK_PACE_MS) return true;
    return this.lagSince !== null && this.o.clock.monoNow() - this.lagSince >= this.o.timeoutMs / 2;
  }

  /** In `city` mode: has confirmation lagged delivery for the timeout? */
  resendDue(): boolean {
    return this.mode === 'city' && this.lagSince !== null && this.o.clock.monoNow() - this.lagSince >= this.o.timeoutMs;
  }

  /**
   * A connection came up. Without a session the broker lost its state (a crash, a fail-over): what
   * it had accepted may never reach anyone, so what is unconfirmed goes again at once.
   */
  resendOnConnect(sessionPresent: boolean, d: DeliveryState): boolean {
    return (
      this.mode === 'city' && !sessionPresent && (d.readings > this.readingsCursor || d.events > this.eventsCursor)
    );
  }

  /** The pumps were rewound to the confirmed cursors. */
  resent(why: string, d: DeliveryState): void {
    this.resends++;
    this.lagSince = null;
    this.o.log.warn(
      {
        why,
        confirmed: this.readingsCursor,
        delivered: d.readings,
        eventsConfirmed: this.eventsCursor,
        eventsDelivered: d.events,
        resends: this.resends,
      },
      'sending again everything the city has not confirmed',
    );
  }

  private moveTo(seq: number, events: number): boolean {
    let moved = false;
    if (seq > this.readingsCursor) {
      this.readingsCursor = seq;
      this.o.outbox.setCursor(this.o.cursorName, seq);
      moved = true;
    }
    if (events > this.eventsCursor) {
      this.eventsCursor = events;
      this.o.outbox.setCursor(this.o.eventsCursorName, events);
      moved = true;
    }
    if (moved) {
      this.lastConfirmAt = this.o.clock.wallNow();
      this.lagSince = null;
    }
    return moved;
  }

  private updateLag(d: DeliveryState): void {
    const lags = d.readings > this.readingsCursor || d.events > this.eventsCursor;
    if (!lags) this.lagSince = null;
    else if (this.lagSince === null) this.lagSince = this.o.clock.monoNow();
  }
}
