import type { Clock } from '../gateway/core/clock.js';
import type { Outbox, ReadingColumns } from '../gateway/core/outbox.js';
import { qualityCode } from '../gateway/core/reading.js';
import { AckTracker } from './ack-tracker.js';
import { TokenBucket } from './pacing.js';
import { encodeColumns } from './protocol/native.js';

export interface TelemetryPumpOptions {
  outbox: Outbox;
  /** durable "delivered to the broker" cursor (PUBACK) */
  cursorName: string;
  batchMaxReadings: number;
  batchMaxBytes: number;
  batchMaxDelayMs: number;
  /** backlog drain pace, readings/s */
  backlogRate: number;
  inflightWindow: number;
  clock: Pick<Clock, 'wallNow' | 'monoNow'>;
  /**
   * Whether live batches should ask the city for a prompt ack (confirmation lags): backlog and
   * resent batches always ask, so a drain's end is confirmed at once.
   */
  promptAck?: () => boolean;
}

/** Sends one telemetry message; `done` runs on its PUBACK (or refusal) on the same connection. */
export type TelemetrySend = (payload: Buffer, done: (err?: Error) => void) => void;

interface Batch {
  kind: 'live' | 'backlog';
  first: number;
  last: number;
  count: number;
}

/**
 * The telemetry pump: outbox → batches → QoS 1 publishes → PUBACK → the durable "delivered"
 * cursor. Live readings go before backlog; the backlog is paced by a token bucket; at most
 * `inflightWindow` batches are out, and the backlog never takes the last two slots.
 *
 * Delivered is flow control only: what the city has stored is the confirmation's business
 * (confirmation.ts). When confirmation stalls, `rewind` sends everything again from there.
 */
export class TelemetryPump {
  private tracker: AckTracker;
  private readonly inflight = new Map<number, Batch>();
  private nextBatchId = 1;
  /** backlog: seqs backlogNext..backlogEnd, paced; live: liveNext.., sent first */
  private backlogNext = 1;
  private backlogEnd = 0;
  private liveNext = 1;
  private liveSince: number | null = null;
  private readonly bucket: TokenBucket;
  /** the highest seq sent (or acknowledged locally as a hole) in this process's life */
  private highestSent: number;
  /**
   * The confirmed cursor of the last rewind: a batch that starts right after it says so
   * (FLAG_FROM_CONFIRMED), so that a receiver database that does not know this gateway's history
   * can start there. -1: no rewind yet.
   */
  private rewoundTo = -1;
  /** wall ms of the last PUBACK, null before the first */
  lastAckAt: number | null = null;
  /** mono ms of the last PUBACK or of the moment work went out with nothing in flight */
  lastProgress = 0;

  constructor(private readonly o: TelemetryPumpOptions) {
    const capacity = Math.max(1, Math.min(o.batchMaxReadings, o.backlogRate));
    this.bucket = new TokenBucket(o.backlogRate, capacity, o.clock.monoNow());
    this.tracker = new AckTracker(o.outbox.getCursor(o.cursorName));
    this.highestSent = this.tracker.cursor;
  }

  /** every seq at or below it is delivered to the broker */
  get cursor(): number {
    return this.tracker.cursor;
  }

  /** the highest seq that ever went out: the city cannot have stored more */
  get sentUpTo(): number {
    return Math.max(this.highestSent, this.tracker.cursor);
  }

  get inflightCount(): number {
    return this.inflight.size;
  }

  /** seqs stored and not yet delivered to the broker */
  backlog(): number {
    return Math.max(0, this.o.outbox.lastSeq() - this.tracker.cursor - this.tracker.ackedAhead());
  }

  /** age (s) of the oldest reading not yet delivered, null when none */
  oldestUndeliveredAgeS(): number | null {
    const cursor = this.tracker.cursor;
    if (this.o.outbox.lastSeq() <= cursor) return null;
    const after = this.tracker.nextUnacked(cursor + 1) - 1;
    const [r] = this.o.outbox.readAfter(after, 1);
    return r ? Math.max(0, Math.round((this.o.clock.wallNow() - r.ts) / 1000)) : null;
  }

  /**
   * A new connection: forget what was in flight; everything stored up to now is backlog (paced),
   * from the delivered cursor; what is stored from here on is live.
   */
  connected(): void {
    this.inflight.clear();
    const last = this.o.outbox.lastSeq();
    this.backlogNext = this.tracker.cursor + 1;
    this.backlogEnd = last;
    this.liveNext = last + 1;
    this.liveSince = null;
    this.lastProgress = this.o.clock.monoNow();
  }

  /** The connection is gone: nothing is in flight any more. */
  disconnected(): void {
    this.inflight.clear();
  }

  /**
   * Sends everything again from `confirmed` + 1: the delivered cursor goes back to the confirmed
   * one (durably), and the PUBACKs of batches still out are ignored when they come.
   */
  rewind(confirmed: number): void {
    const to = Math.min(confirmed, this.tracker.cursor);
    this.tracker = new AckTracker(to);
    this.rewoundTo = to;
    this.o.outbox.setCursor(this.o.cursorName, to);
    this.connected();
  }

  /** Whether a live batch is due now (or pending at all, with `force`). */
  liveDue(force: boolean): boolean {
    const lastSeq = this.o.outbox.lastSeq();
    if (lastSeq < this.liveNext) return false;
    const now = this.o.clock.monoNow();
    if (this.liveSince === null) this.liveSince = now;
    return (
      force || lastSeq - this.liveNext + 1 >= this.o.batchMaxReadings || now - this.liveSince >= this.o.batchMaxDelayMs
    );
  }

  /** Publishes what is due: live first, then paced backlog, within the window. */
  pump(send: TelemetrySend, onRefused: (err: Error) => void, force: boolean): void {
    const window = this.o.inflightWindow;
    // Backlog never takes the whole window: a live batch always finds a free slot.
    const backlogSlots = Math.max(1, window - 2);
    for (let guard = 0; guard < 1000 && this.inflight.size < window; guard++) {
      const lastSeq = this.o.outbox.lastSeq();
      if (this.liveDue(force)) {
        const before = this.liveNext;
        this.sendRange('live', lastSeq, this.o.batchMaxReadings, send, onRefused);
        if (this.liveNext > lastSeq) this.liveSince = null;
        if (this.liveNext !== before) continue;
      }
      if (this.backlogNext <= this.backlogEnd && this.backlogInflight() < backlogSlots) {
        const now = this.o.clock.monoNow();
        const want = Math.min(this.bucket.capacity, this.backlogEnd - this.backlogNext + 1);
        if (this.bucket.available(now) >= want) {
          const before = this.backlogNext;
          const sent = this.sendRange('backlog', this.backlogEnd, want, send, onRefused);
          this.bucket.take(sent, now);
          if (this.backlogNext !== before) continue;
        }
      }
      break;
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
  private sendRange(
    kind: Batch['kind'],
    to: number,
    maxCount: number,
    send: TelemetrySend,
    onRefused: (err: Error) => void,
  ): number {
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
      this.highestSent = Math.max(this.highestSent, hi);
      setPtr(hi + 1);
      return 0;
    }
    let n = cols.count;
    let payload: Buffer;
    // Live messages are small and cross the cellular link often: the best deflate pays. A backlog
    // message holds thousands of readings, where level 6 is nearly as small and much faster.
    const level = kind === 'live' ? 9 : 6;
    const fromConfirmed = from === this.rewoundTo + 1 && this.rewoundTo > 0;
    const promptAck = kind === 'backlog' || fromConfirmed || this.o.promptAck?.() === true;
    for (;;) {
      const lastSeq = cols.seqs[n - 1]!;
      payload = encodeColumns(
        {
          epoch: this.o.outbox.epoch,
          firstSeq: from,
          lastSeq,
          count: n,
          // the outbox gives increasing seqs after from - 1: a run as long as its span has no holes
          seqs: lastSeq - from + 1 === n ? null : cols.seqs,
          series: cols.series,
          names: cols.names,
          ts: cols.ts,
          quality: cols.quality,
          values: cols.values,
          decimals: cols.decimals,
          scaled: cols.scaled,
          fromConfirmed,
          promptAck,
          compactAck: true,
        },
        { level },
      );
      if (payload.length <= this.o.batchMaxBytes || n === 1) break;
      n = Math.ceil(n / 2);
    }
    const last = cols.seqs[n - 1]!;
    const id = this.nextBatchId++;
    if (this.inflight.size === 0) this.lastProgress = this.o.clock.monoNow();
    const batch: Batch = { kind, first: from, last, count: n };
    this.inflight.set(id, batch);
    this.highestSent = Math.max(this.highestSent, last);
    setPtr(last + 1);
    send(payload, (err) => {
      // a batch forgotten by a reconnect or a rewind is being sent again anyway
      if (this.inflight.get(id) !== batch) return;
      this.inflight.delete(id);
      if (err) {
        onRefused(err);
        return;
      }
      this.lastAckAt = this.o.clock.wallNow();
      this.lastProgress = this.o.clock.monoNow();
      this.ackLocally(batch.first, batch.last);
    });
    return n;
  }

  private readColumns(after: number, limit: number, maxSeq: number): ReadingColumns {
    return readColumnsOf(this.o.outbox, after, limit, maxSeq);
  }

  private ackLocally(first: number, last: number): void {
    if (this.tracker.ack(first, last)) this.o.outbox.setCursor(this.o.cursorName, this.tracker.cursor);
  }
}

/**
 * Readings after `after` up to `maxSeq`, as columns: the store's column read, or through readAfter
 * for an outbox without it. Every northbound format reads the outbox through this.
 */
export function readColumnsOf(outbox: Outbox, after: number, limit: number, maxSeq: number): ReadingColumns {
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
