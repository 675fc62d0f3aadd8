import type Database from 'better-sqlite3';
import { describeError, LangbiangError } from '../../gateway/core/errors.js';
import { decodeTelemetry, encodeTelemetry } from '../protocol/native.js';
import type { TelemetryBatch } from '../protocol/types.js';

/**
 * Batches of more readings than this land as one row (a backlog's drain); smaller ones (a live
 * gateway's 30 s batch) become rows at once.
 */
export const LAND_ABOVE_READINGS = 1000;
/** Readings moved from `landed` to `readings` per transaction. */
export const EXPAND_CHUNK_READINGS = 50_000;
/** The receiver expands once no telemetry has been written for this long. */
export const EXPAND_WHEN_IDLE_MS = 250;
/**
 * Past this many readings waiting in `landed`, each landing expands a chunk first: a receiver that
 * is never idle still turns its backlog into rows, at the rate of row inserts.
 */
export const LANDED_MAX_READINGS = 5_000_000;

/**
 * Why a receiver database has a `landed` table (docs/performance.md, "Drain"): storing a
 * reading as a row costs SQLite three B-tree inserts (the key, the device index, the time index)
 * and with them most of the receiver's CPU. A gateway draining a backlog sends 5,000 readings a
 * message; the receiver checks the message, stores it whole as one row of `landed` (its bytes as
 * they came, in the same transaction as the watermark), and acknowledges. That is stored: the
 * commit is durable, and every reader of the database sees those readings (a reader expands what
 * is landed before it reads). When the receiver is idle it moves landed batches into `readings`,
 * 50,000 rows per transaction — larger transactions than one message, which also makes each row
 * cheaper. The move is idempotent (the rows' key dedupes, the landed row goes in the same
 * transaction), so a crash in the middle only repeats it.
 */
export class Landing {
  private readonly stmts: {
    land: Database.Statement;
    next: Database.Statement;
    drop: Database.Statement;
    pending: Database.Statement;
  };
  private timer: NodeJS.Timeout | undefined;
  private lastWriteAt = 0;
  private closed = false;

  constructor(
    private readonly db: Database.Database,
    /** inserts a batch's readings into `readings` inside the caller's transaction; returns rows added */
    private readonly insertRows: (b: TelemetryBatch, receivedAt: number) => number,
    private readonly opts: { onError?: (message: string) => void; idleMs?: number; chunk?: number } = {},
  ) {
    this.stmts = {
      land: db.prepare(
        'INSERT INTO landed (gateway, epoch, first_seq, last_seq, readings, received_at, body) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      // one at a time: a chunk takes ~10 of a drain's batches, and each body is read once
      next: db.prepare('SELECT id, gateway, readings, body FROM landed ORDER BY id LIMIT 1'),
      drop: db.prepare('DELETE FROM landed WHERE id = ?'),
      pending: db.prepare('SELECT coalesce(sum(readings), 0) FROM landed').pluck(),
    };
  }

  /** Readings stored in `landed`, not yet in `readings`. */
  pending(): number {
    return this.stmts.pending.get() as number;
  }

  /**
   * Inside the caller's transaction: the batch as one row. `payload` is the message as it came
   * (a native telemetry message); without it the batch is encoded again.
   */
  land(b: TelemetryBatch, receivedAt: number, payload?: Uint8Array): void {
    const body = payload ?? encodeTelemetry(b, { level: 1 });
    this.stmts.land.run(b.gateway, b.epoch, b.firstSeq, b.lastSeq, b.readings.length, receivedAt, body);
  }

  /** A telemetry write happened: expansion waits until the receiver is idle. */
  touched(): void {
    this.lastWriteAt = Date.now();
    this.schedule(this.opts.idleMs ?? EXPAND_WHEN_IDLE_MS);
  }

  private schedule(ms: number): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.onTimer();
    }, ms);
    this.timer.unref();
  }

  private onTimer(): void {
    const idleMs = this.opts.idleMs ?? EXPAND_WHEN_IDLE_MS;
    const quiet = Date.now() - this.lastWriteAt;
    if (quiet < idleMs) {
      this.schedule(idleMs - quiet);
      return;
    }
    try {
      // one chunk per turn of the event loop: a message that arrives waits for one chunk at most
      if (this.expandChunk() > 0) this.schedule(0);
    } catch (err) {
      this.opts.onError?.(describeError(err));
      this.schedule(5_000);
    }
  }

  /**
   * Moves whole landed batches, up to about one chunk of readings, into `readings` in one
   * transaction. Returns the batches moved (0: nothing was landed).
   */
  expandChunk(limit = this.opts.chunk ?? EXPAND_CHUNK_READINGS): number {
    let batches = 0;
    this.db
      .transaction(() => {
        const now = Date.now();
        let readings = 0;
        while (readings < limit) {
          const r = this.stmts.next.get() as
            | { id: number; gateway: string; readings: number; body: Buffer }
            | undefined;
          if (!r) break;
          let b: TelemetryBatch;
          try {
            b = decodeTelemetry(r.body, { gateway: r.gateway });
          } catch (err) {
            // it decoded when it landed: this is a damaged database, not a bad message
            throw new LangbiangError(
              'STORE_FAILED',
              `landed batch ${r.id} of ${r.gateway} no longer decodes: ${describeError(err)}`,
            );
          }
          // received_at is when the row is written: a reader following rows by arrival finds them
          this.insertRows(b, now);
          this.stmts.drop.run(r.id);
          readings += r.readings;
          batches++;
        }
      })
      .immediate();
    return batches;
  }

  /** Everything landed into `readings` (a reader is about to read them). */
  expandAll(): void {
    for (;;) if (this.expandChunk() === 0) return;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
