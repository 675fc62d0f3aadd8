import type { Clock } from '../gateway/core/clock.js';
import type { EventOutbox, Outbox } from '../gateway/core/outbox.js';
import { SYNC_DEFAULTS } from './defaults.js';
import { EVENTS_VERSION, encodeEvents } from './protocol/events.js';

export interface EventPumpOptions {
  gatewayId: string;
  outbox: Outbox;
  events: EventOutbox;
  /** durable "delivered to the broker" cursor over event ids */
  cursorName: string;
  clock: Pick<Clock, 'wallNow' | 'monoNow'>;
}

/**
 * The events pump (gaps, command audit, alarms, config changes): one JSON batch in flight at a
 * time, before any telemetry. Each batch says which ids it spans (`after`), so the city knows an
 * id missing from it does not exist, and up to which id the gateway was confirmed before.
 */
export class EventPump {
  private cursorId: number;
  private inflight = false;
  /** wall ms of the last PUBACK */
  lastAckAt: number | null = null;
  lastProgress = 0;
  private highestSent: number;
  /** bumped by a rewind: the PUBACK of a batch sent before it no longer moves the cursor */
  private generation = 0;

  constructor(private readonly o: EventPumpOptions) {
    this.cursorId = o.outbox.getCursor(o.cursorName);
    this.highestSent = this.cursorId;
  }

  /** every event id at or below it is delivered to the broker */
  get cursor(): number {
    return this.cursorId;
  }

  get sentUpTo(): number {
    return Math.max(this.highestSent, this.cursorId);
  }

  get busy(): boolean {
    return this.inflight;
  }

  backlog(): number {
    return Math.max(0, this.o.events.lastEventId() - this.cursorId);
  }

  disconnected(): void {
    this.inflight = false;
  }

  /** Sends again from the confirmed id; an ack of the batch in flight is ignored when it comes. */
  rewind(confirmed: number): void {
    this.cursorId = Math.min(confirmed, this.cursorId);
    this.o.outbox.setCursor(this.o.cursorName, this.cursorId);
    this.inflight = false;
    this.generation++;
  }

  /** Publishes the next batch if none is out; `confirmed` is the confirmed events cursor. */
  pump(
    send: (payload: Buffer, done: (err?: Error) => void) => void,
    onRefused: (err: Error) => void,
    confirmed: number,
  ): void {
    const events = this.o.events;
    if (this.inflight) return;
    if (events.lastEventId() <= this.cursorId) return;
    const list = events.eventsAfter(this.cursorId, SYNC_DEFAULTS.eventsBatchMax);
    if (list.length === 0) {
      // pruned below the cursor (never expected): nothing to send up to the newest id
      this.cursorId = events.lastEventId();
      this.o.outbox.setCursor(this.o.cursorName, this.cursorId);
      return;
    }
    const after = this.cursorId;
    const payload = encodeEvents({
      v: EVENTS_VERSION,
      gateway: this.o.gatewayId,
      epoch: this.o.outbox.epoch,
      after,
      ...(confirmed > 0 ? { confirmed } : {}),
      events: list,
    });
    const lastId = list[list.length - 1]!.id;
    this.highestSent = Math.max(this.highestSent, lastId);
    this.lastProgress = this.o.clock.monoNow();
    this.inflight = true;
    const gen = this.generation;
    send(payload, (err) => {
      if (gen !== this.generation || !this.inflight) return;
      this.inflight = false;
      if (err) {
        onRefused(err);
        return;
      }
      this.lastAckAt = this.o.clock.wallNow();
      this.lastProgress = this.o.clock.monoNow();
      this.cursorId = Math.max(this.cursorId, lastId);
      this.o.outbox.setCursor(this.o.cursorName, this.cursorId);
    });
  }
}
