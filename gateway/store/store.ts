import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describeError, isLangbiangError, LangbiangError } from '../core/errors.js';
import type {
  EventOutbox,
  EventRecorder,
  GatewayEventKind,
  GatewayEventRecord,
  Outbox,
  ReadingColumns,
} from '../core/outbox.js';
import { type GapEvent, qualityCode, type Reading, type StoredReading } from '../core/reading.js';
import { FLAG_UNSYNCED } from './batch-codec.js';
import { BatchTable } from './batch-table.js';
import { type Restamp, restampBuffered, restampCommitted } from './clock-correction.js';
import { ControlTables } from './control-tables.js';
import { CONFIRMED_CURSOR, CursorTable, EVENTS_CONFIRMED_CURSOR } from './cursors.js';
import { EventLog } from './event-log.js';
import {
  type CorrectionOptions,
  type QueryOptions,
  type StoreOptions,
  type StoreStats,
  validateStoreOptions,
} from './options.js';
import { type PendingReading, toPending } from './pending.js';
import { ReadingQueries } from './queries.js';
import { Retention } from './retention.js';
import { checkVersion, migrate, SCHEMA_VERSION, storeVersions } from './schema.js';
import { SeriesDictionary } from './series-dictionary.js';
import { TimestampIndex } from './timestamp-index.js';

export { FLAG_UNSYNCED } from './batch-codec.js';
export { CONFIRMED_CURSOR, EVENTS_CONFIRMED_CURSOR, EVENTS_CURSOR, SYNC_CURSOR } from './cursors.js';
export type { CorrectionOptions, QueryOptions, StoreOptions, StoreStats } from './options.js';
export { TS_BLOCK_SIZE } from './timestamp-index.js';

/** File name of the store inside the data directory. */
export const STORE_FILE = 'langbiang.db';
/**
 * Every commit rewrites page 1 (the page count) and the leaf that holds its short batch cell; the
 * packed readings go to fresh overflow pages. At 512 bytes those rewrites are as small as SQLite
 * allows (docs/performance.md has the page-by-page count). Only takes effect when the file is
 * created; a store made with 1 KiB pages keeps them.
 */
export const PAGE_SIZE = 512;
/** A commit larger than this is stored as several rows, so a read never decodes a huge blob. */
const ROW_MAX_READINGS = 1000;

const DEFAULT_BATCH_READINGS = 500;
const DEFAULT_BATCH_DELAY_MS = 1000;
const DEFAULT_MAX_BUFFERED = 100_000;

/**
 * The SQLite store (WAL). Readings are buffered and committed in batches; each gets a gateway-wide
 * seq that is never reused. Implements the Outbox the sync agent reads through.
 *
 * This class is the façade: ingest (buffer, commit, seqs) is here; the parts it composes each have
 * one job — batches (packed rows), series dictionary, event log and gaps, cursors, timestamp
 * index, queries, retention (caps), clock correction (see README.md).
 */
export class Store implements Outbox, EventRecorder, EventOutbox {
  readonly epoch: string;
  readonly file: string;
  readonly readonly: boolean;

  private readonly db: Database.Database;
  private readonly opts: StoreOptions;
  private readonly batchMaxReadings: number;
  private readonly batchMaxDelayMs: number;
  private readonly maxBuffered: number;

  private buffer: PendingReading[] = [];
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** seq the next committed reading gets */
  private nextSeq: number;
  /** newest seq committed (readings) or reserved for a recorded gap */
  private committedSeq: number;
  private commits = 0;
  private pendingGaps: Omit<GapEvent, 'id'>[] = [];
  private controlTables: ControlTables | null = null;

  private readonly batches: BatchTable;
  private readonly dictionary: SeriesDictionary;
  private readonly cursors: CursorTable;
  private readonly eventLog: EventLog;
  private readonly index: TimestampIndex;
  private readonly retention: Retention;
  private readonly queries: ReadingQueries;

  private constructor(db: Database.Database, opts: StoreOptions, file: string) {
    this.db = db;
    this.opts = opts;
    this.file = file;
    this.readonly = opts.readonly === true;
    this.batchMaxReadings = opts.batchMaxReadings ?? DEFAULT_BATCH_READINGS;
    this.batchMaxDelayMs = opts.batchMaxDelayMs ?? DEFAULT_BATCH_DELAY_MS;
    this.maxBuffered = opts.maxBufferedReadings ?? DEFAULT_MAX_BUFFERED;

    const getMeta = db.prepare('SELECT value FROM meta WHERE key = ?').pluck();
    const epoch = getMeta.get('epoch') as string | undefined;
    if (!epoch)
      throw new LangbiangError('STORE_FAILED', `${file} has no store epoch; it is not a complete Langbiang store`);
    this.epoch = epoch;

    this.batches = new BatchTable(db, this.readonly);
    this.dictionary = new SeriesDictionary(db, this.readonly);
    this.cursors = new CursorTable(db, this.readonly);
    if (!this.readonly) this.cursors.adoptDeliveredAsConfirmed();
    this.eventLog = new EventLog(
      db,
      this.readonly,
      () => this.wallNow(),
      () => this.cursors.get(EVENTS_CONFIRMED_CURSOR) ?? 0,
    );
    this.index = new TimestampIndex(db, this.readonly, this.batches);
    this.queries = new ReadingQueries(this.batches, this.dictionary, this.index);
    this.retention = new Retention(
      {
        db,
        readonly: this.readonly,
        batches: this.batches,
        events: this.eventLog,
        index: this.index,
        confirmedSeq: () => this.cursors.get(CONFIRMED_CURSOR) ?? 0,
        write: (fn) => this.writeTransaction(fn),
        onGap: (gap) => this.opts.events?.emit('gap', gap),
        wallNow: () => this.wallNow(),
        monoNow: () => this.monoNow(),
      },
      opts,
    );

    const floor = Number(getMeta.get('seq_floor') ?? 0);
    const maxSeq = this.batches.maxSeq() ?? 0;
    this.committedSeq = Math.max(floor, maxSeq, this.eventLog.maxGapSeq());
    this.nextSeq = this.committedSeq + 1;
    this.index.loadOpenBlock(maxSeq);
  }

  static open(opts: StoreOptions): Store {
    validateStoreOptions(opts);
    const readonly = opts.readonly === true;
    const file = join(opts.dataDir, STORE_FILE);
    let db: Database.Database;
    try {
      if (!readonly) mkdirSync(opts.dataDir, { recursive: true });
      db = new Database(file, { readonly, fileMustExist: readonly });
    } catch (err) {
      throw new LangbiangError('STORE_FAILED', `cannot open the store ${file}: ${describeError(err)}`, undefined, {
        cause: err,
      });
    }
    try {
      if (readonly) {
        const found = storeVersions(db);
        checkVersion(found, file);
        const version = found.version;
        if (version < SCHEMA_VERSION) {
          throw new LangbiangError(
            'STORE_FAILED',
            `${file} has store schema version ${version}; start the gateway once to upgrade it`,
          );
        }
      } else {
        if ((db.pragma('page_count', { simple: true }) as number) === 0) db.pragma(`page_size = ${PAGE_SIZE}`);
        const mode = db.pragma('journal_mode = WAL', { simple: true });
        if (mode !== 'wal')
          throw new LangbiangError('STORE_FAILED', `${file}: cannot switch to WAL mode (got ${String(mode)})`);
        // Power-loss window: see README.md. FULL fsyncs the WAL at every commit; NORMAL only at checkpoints.
        db.pragma(`synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
        // Freed pages are reused as they are; zeroing them would double the writes of every deletion.
        db.pragma('secure_delete = OFF');
        // After a checkpoint the WAL is cut back, so the file on disk stays near the cap.
        db.pragma(`journal_size_limit = ${1024 * 1024}`);
        // A 1 MiB page cache (SQLite's default is 2 MiB per connection): appends touch only the right
        // edge of the B-trees, and the gateway's RSS target counts every connection.
        db.pragma('cache_size = -1024');
        migrate(db, file);
      }
      return new Store(db, opts, file);
    } catch (err) {
      db.close();
      if (isLangbiangError(err)) throw err;
      throw new LangbiangError('STORE_FAILED', `cannot open the store ${file}: ${describeError(err)}`, undefined, {
        cause: err,
      });
    }
  }

  // ---- ingest ---------------------------------------------------------------------------------

  /** Buffers readings; they are committed with the batch (see batchMaxReadings/batchMaxDelayMs). */
  append(readings: readonly Reading[]): void {
    this.assertWritable();
    const checked = readings.map(toPending);
    for (const p of checked) this.buffer.push(p);
    if (this.buffer.length > this.maxBuffered) this.dropOverflow();
    if (this.buffer.length >= this.batchMaxReadings) {
      this.commitInBackground();
    } else {
      this.schedule();
    }
  }

  /** Commits what is buffered now (and dirty cursors); returns the number of readings committed. */
  flush(): number {
    this.assertWritable();
    this.clearTimer();
    return this.commit();
  }

  close(): void {
    if (this.closed) return;
    try {
      if (!this.readonly) this.flush();
    } finally {
      this.clearTimer();
      this.closed = true;
      this.db.close();
    }
  }

  // ---- Outbox ---------------------------------------------------------------------------------

  readAfter(afterSeq: number, limit: number): StoredReading[] {
    this.assertOpen();
    if (limit <= 0) return [];
    const rows = this.batches.rows(afterSeq + 1, Number.MAX_SAFE_INTEGER, limit);
    if (rows.length > limit) rows.length = limit;
    return rows.map((r) => this.queries.toStored(r));
  }

  /** Outbox fast path of the sync agent: what readAfter returns, as columns (see columns.ts). */
  readColumnsAfter(afterSeq: number, limit: number, maxSeq = Number.MAX_SAFE_INTEGER): ReadingColumns {
    this.assertOpen();
    const cols = this.batches.columns(afterSeq + 1, maxSeq, limit);
    cols.truncate(Math.max(0, limit));
    const n = cols.count;
    // views of exactly count readings (the builder's arrays have room beyond)
    return {
      count: n,
      seqs: cols.seqs.subarray(0, n),
      series: cols.series.subarray(0, n),
      ts: cols.ts.subarray(0, n),
      quality: cols.quality.subarray(0, n),
      values: cols.values,
      decimals: cols.decimals.subarray(0, n),
      scaled: cols.scaled.subarray(0, n),
      names: (id) => {
        const s = this.dictionary.series(id);
        return { device: s?.device ?? `#${id}`, point: s?.point ?? `#${id}`, unit: s?.unit ? s.unit : null };
      },
    };
  }

  lastSeq(): number {
    return this.committedSeq;
  }

  getCursor(name: string): number {
    return this.cursors.get(name) ?? 0;
  }

  /**
   * Moves a cursor. It is written with the next commit (at most batchMaxDelayMs later), not in a
   * transaction of its own: a crash can at worst move it back a little, and what is then sent
   * again the receiver drops by (epoch, seq).
   */
  setCursor(name: string, seq: number): void {
    this.assertWritable();
    if (!Number.isSafeInteger(seq) || seq < 0)
      throw new LangbiangError('STORE_FAILED', `cursor ${name}: seq must be a non-negative integer, got ${seq}`);
    if (this.cursors.move(name, seq)) this.schedule();
  }

  gapsAfter(afterId: number): GapEvent[] {
    this.assertOpen();
    return this.eventLog.gapsAfter(afterId);
  }

  // ---- events (EventRecorder, EventOutbox) ----------------------------------------------------

  /** Records an event for the city now (its own small transaction: events are rare); returns its id. */
  recordEvent(kind: GatewayEventKind, data: Record<string, unknown>): number {
    this.assertWritable();
    return this.eventLog.record(kind, data);
  }

  eventsAfter(afterId: number, limit: number): GatewayEventRecord[] {
    this.assertOpen();
    return this.eventLog.after(afterId, limit);
  }

  /** Newest event id ever given (0 when none); ids are never reused, even after pruning. */
  lastEventId(): number {
    this.assertOpen();
    return this.eventLog.lastId();
  }

  // ---- queries --------------------------------------------------------------------------------

  query(opts: QueryOptions = {}): StoredReading[] {
    return [...this.iterate(opts)];
  }

  /**
   * Committed readings matching opts, by seq. Pages through the table (never holds a statement
   * open across a yield), so commits may happen while a caller iterates slowly.
   */
  *iterate(opts: QueryOptions = {}): IterableIterator<StoredReading> {
    this.assertOpen();
    yield* this.queries.iterate(opts);
  }

  /** Newest committed reading of each device/point, sorted by device then point. */
  latest(): StoredReading[] {
    this.assertOpen();
    return this.queries.latest();
  }

  stats(): StoreStats {
    this.assertOpen();
    const first = this.batches.minSeq() ?? 0;
    const maxSeq = this.batches.maxSeq() ?? 0;
    let readings = 0;
    if (first > 0) {
      // Held seqs are contiguous except where an ingest_overflow gap reserved seqs that never existed.
      readings = maxSeq - first + 1 - this.eventLog.overflowHolesBetween(first, maxSeq);
    }
    return {
      readings,
      firstSeq: first,
      lastSeq: this.committedSeq,
      bytes: this.retention.usedBytes(),
      fileBytes: fileSize(this.file) + fileSize(`${this.file}-wal`),
      gaps: this.eventLog.gapCount(),
      buffered: this.buffer.length,
      commits: this.commits,
    };
  }

  // ---- time correction (clock-correction.ts) --------------------------------------------------

  /**
   * Shifts the wall time of the unsynced readings of one boot by stepMs (the clock step seen when
   * NTP synchronised), committed and still buffered alike; returns how many were corrected.
   */
  correctUnsyncedTimestamps(bootId: string, stepMs: number, opts: CorrectionOptions = {}): number {
    if (!Number.isFinite(stepMs))
      throw new LangbiangError('STORE_FAILED', `clock step must be a finite number of ms, got ${stepMs}`);
    const step = Math.round(stepMs);
    return this.restamp(bootId, opts.markSynced !== false, (p) => p.ts + step);
  }

  /**
   * Re-stamps the unsynced readings of one boot as mono + offsetMs, where offsetMs is wall - mono of
   * the synchronised clock. Exact when mono is the boot's monotonic clock, which is what lets a
   * process started after NTP synchronised fix readings an earlier process of the same boot took.
   */
  rebaseUnsyncedTimestamps(bootId: string, offsetMs: number, opts: CorrectionOptions = {}): number {
    if (!Number.isFinite(offsetMs))
      throw new LangbiangError('STORE_FAILED', `clock offset must be a finite number of ms, got ${offsetMs}`);
    const offset = Math.round(offsetMs);
    return this.restamp(bootId, opts.markSynced !== false, (p) => p.mono + offset);
  }

  /** Applies the caps now (also done after commits); returns the gaps recorded. */
  enforceRetention(): GapEvent[] {
    this.assertWritable();
    return this.retention.enforce();
  }

  /** The command-result and control-settings tables (command router, cabinet schedules). */
  control(): ControlTables {
    this.assertWritable();
    this.controlTables ??= new ControlTables(this.db);
    return this.controlTables;
  }

  // ---- internals: commit ----------------------------------------------------------------------

  private commitInBackground(): void {
    try {
      this.clearTimer();
      this.commit();
    } catch (err) {
      this.report(err, 'commit failed, will retry: ', '');
      this.schedule();
    }
  }

  /** A failure no caller is waiting for: to onError, else one line on stderr. */
  private report(err: unknown, linePrefix: string, messagePrefix: string): void {
    const e = isLangbiangError(err)
      ? err
      : new LangbiangError('STORE_FAILED', `${messagePrefix}${describeError(err)}`, undefined, { cause: err });
    if (this.opts.onError) this.opts.onError(e);
    else process.stderr.write(`langbiang store: ${linePrefix}${e.message}\n`);
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    if (this.buffer.length === 0 && !this.cursors.hasDirty()) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.commitInBackground();
    }, this.batchMaxDelayMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * One write transaction that also writes the moved cursors (they ride along with whatever the
   * store writes next, never alone in a commit of their own unless nothing else comes).
   */
  private writeTransaction(fn: () => void): void {
    this.db
      .transaction(() => {
        fn();
        this.cursors.writeDirty();
      })
      .immediate();
    this.cursors.markWritten();
    this.commits++;
  }

  private commit(): number {
    if (this.buffer.length === 0 && !this.cursors.hasDirty() && this.pendingGaps.length === 0) return 0;
    const batch = this.buffer;
    const newSeries: string[] = [];
    const newBoots: string[] = [];
    let seq = this.nextSeq;
    const span = this.index.stage();
    const gapRows: GapEvent[] = [];
    try {
      this.writeTransaction(() => {
        // Another writer on the same file (never intended) must not make us reuse its seqs.
        const maxSeq = this.batches.maxSeq() ?? 0;
        if (maxSeq >= seq) seq = maxSeq + 1;
        for (const g of this.pendingGaps) gapRows.push(this.eventLog.recordGap(g));
        // One row per commit (split past ROW_MAX_READINGS): see batch-codec.ts for why.
        const enc = this.batches.encoder();
        enc.reset();
        let rowFirst = seq;
        for (const p of batch) {
          if (enc.count >= ROW_MAX_READINGS) {
            this.batches.insertEncoded(rowFirst);
            enc.reset();
            rowFirst = seq;
          }
          enc.add({
            series: this.dictionary.seriesIdFor(p.device, p.point, p.unit ?? '', newSeries),
            ts: p.ts,
            mono: p.mono,
            value: p.value,
            quality: qualityCode(p.quality),
            flags: p.synced ? 0 : FLAG_UNSYNCED,
            boot: this.dictionary.bootRowFor(p.bootId, seq, newBoots),
          });
          this.index.add(span, seq, p.ts);
          seq++;
        }
        this.batches.insertEncoded(rowFirst);
      });
    } catch (err) {
      // The transaction rolled back: forget dictionary rows it had added.
      this.dictionary.forget(newSeries, newBoots);
      throw new LangbiangError('STORE_FAILED', `store commit failed: ${describeError(err)}`, undefined, { cause: err });
    }
    const firstSeq = seq - batch.length;
    this.buffer = [];
    this.pendingGaps = [];
    this.nextSeq = seq;
    if (batch.length > 0) this.committedSeq = Math.max(this.committedSeq, seq - 1);
    this.index.adopt(span);

    // the buffered objects become the stored readings (pending.ts: one object per reading)
    for (let i = 0; i < batch.length; i++) (batch[i] as PendingReading).seq = firstSeq + i;
    const events = this.opts.events;
    if ((events || this.queries.tracksLatest()) && batch.length > 0) {
      this.queries.noteCommitted(batch);
      events?.emit('readings', batch);
    }
    for (const g of gapRows) events?.emit('gap', g);
    this.applyCapsAfterCommit();
    return batch.length;
  }

  private applyCapsAfterCommit(): void {
    try {
      this.retention.afterCommit();
    } catch (err) {
      // The batch is committed; a failed deletion is retried after the next commit.
      this.report(err, '', 'store retention failed: ');
    }
  }

  /** Commits keep failing (disk gone?): drop the oldest buffered readings, accounted as a gap. */
  private dropOverflow(): void {
    const excess = this.buffer.length - this.maxBuffered;
    this.buffer.splice(0, excess);
    const firstSeq = this.nextSeq;
    this.nextSeq += excess;
    this.committedSeq = Math.max(this.committedSeq, this.nextSeq - 1);
    const prev = this.pendingGaps[this.pendingGaps.length - 1];
    if (prev && prev.reason === 'ingest_overflow' && prev.lastSeq + 1 === firstSeq) {
      prev.lastSeq += excess;
      prev.count += excess;
      return;
    }
    this.pendingGaps.push({
      firstSeq,
      lastSeq: firstSeq + excess - 1,
      count: excess,
      reason: 'ingest_overflow',
      ts: this.wallNow(),
    });
  }

  /** Re-stamps the unsynced readings of one boot, buffered and committed (clock-correction.ts). */
  private restamp(bootId: string, markSynced: boolean, restamp: Restamp): number {
    this.assertWritable();
    let count = restampBuffered(this.buffer, bootId, markSynced, restamp);
    const boot = this.dictionary.boot(bootId);
    if (!boot) return count;
    this.writeTransaction(() => {
      count += restampCommitted(this.batches, boot, markSynced, restamp);
      this.index.rebuildFrom(boot.firstSeq);
    });
    this.index.loadOpenBlock(this.batches.maxSeq());
    this.queries.forgetLatest();
    return count;
  }

  private wallNow(): number {
    return this.opts.clock ? this.opts.clock.wallNow() : Date.now();
  }

  private monoNow(): number {
    return this.opts.clock ? this.opts.clock.monoNow() : performance.now();
  }

  private assertOpen(): void {
    if (this.closed) throw new LangbiangError('STORE_FAILED', 'the store is closed');
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.readonly) throw new LangbiangError('STORE_FAILED', 'the store was opened read-only');
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
