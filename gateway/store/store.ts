import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Clock } from '../core/clock.js';
import { describeError, isLangbiangError, LangbiangError } from '../core/errors.js';
import type { EventBus } from '../core/events.js';
import type {
  EventOutbox,
  EventRecorder,
  GatewayEventKind,
  GatewayEventRecord,
  Outbox,
  ReadingColumns,
} from '../core/outbox.js';
import {
  type GapEvent,
  QUALITIES,
  type Quality,
  qualityCode,
  qualityFromCode,
  type Reading,
  type StoredReading,
} from '../core/reading.js';
import type { RawRow } from './batch-codec.js';
import { BatchTable } from './batch-table.js';
import { ControlTables } from './control-tables.js';
import { checkVersion, migrate, SCHEMA_VERSION } from './schema.js';

/** File name of the store inside the data directory. */
export const STORE_FILE = 'langbiang.db';
/** The cursor the sync agent advances on PUBACK; readings at or below it count as delivered. */
export const SYNC_CURSOR = 'sync';
/** The sync agent's cursor over the events table (event ids, not seqs). */
export const EVENTS_CURSOR = 'sync-events';
/**
 * Advanced by the city's end-to-end acknowledgement (or by PUBACK where the city sends none):
 * readings at or below it are stored at the city. Only these may be dropped without a gap event.
 */
export const CONFIRMED_CURSOR = 'sync-confirmed';
/** The same over event ids: only confirmed events are pruned. */
export const EVENTS_CONFIRMED_CURSOR = 'sync-events-confirmed';
/** meta key: the confirmed cursors exist (see adoptDeliveredAsConfirmed) */
const CONFIRM_CURSORS_META = 'confirmed_cursors';
/** Acknowledged events beyond this many newest are pruned; unacknowledged ones are always kept. */
const EVENTS_KEEP = 10_000;
const MAX_EVENT_DATA_BYTES = 64 * 1024;
/** Reading flag bit: the wall clock was not known to be synchronised when it was stamped. */
export const FLAG_UNSYNCED = 1;
/** Seqs per ts_blocks row (see schema.ts). */
export const TS_BLOCK_SIZE = 1024;
/**
 * Every commit rewrites page 1 (the page count) and the leaf that holds its short batch cell; the
 * packed readings go to fresh overflow pages. At 512 bytes those rewrites are as small as SQLite
 * allows (docs/performance.md has the page-by-page count). Only takes effect when the file is
 * created; a store made with 1 KiB pages keeps them.
 */
export const PAGE_SIZE = 512;
/** A commit larger than this is stored as several rows, so a read never decodes a huge blob. */
const ROW_MAX_READINGS = 1000;

export interface StoreOptions {
  dataDir: string;
  /** cap on the database file (bytes); the WAL adds at most about wal_autocheckpoint pages on top */
  maxBytes?: number;
  /** readings older than this (wall ms) are dropped; only enforced while the clock is synchronised */
  maxAgeMs?: number;
  synchronous?: 'full' | 'normal';
  /** commit when this many readings are buffered (default 500) */
  batchMaxReadings?: number;
  /** commit at the latest this long after the first buffered reading (default 1000) */
  batchMaxDelayMs?: number;
  clock?: Clock;
  /** receives 'gap' for each recorded gap and 'readings' for each committed batch */
  events?: EventBus;
  /** open an existing store for reading only (export while the gateway runs) */
  readonly?: boolean;
  /** when commits keep failing, buffered readings beyond this are dropped as an ingest_overflow gap (default 100000) */
  maxBufferedReadings?: number;
  /** how often the age cap is checked after commits (default 60000 ms) */
  ageCheckIntervalMs?: number;
  /** failures of background commits (timer-driven); default writes one line to stderr */
  onError?: (err: LangbiangError) => void;
}

export interface QueryOptions {
  device?: string;
  point?: string;
  /** wall ms, inclusive */
  from?: number;
  /** wall ms, inclusive */
  to?: number;
  limit?: number;
  afterSeq?: number;
  /** by seq; default 'asc' */
  order?: 'asc' | 'desc';
}

export interface StoreStats {
  /** committed readings held */
  readings: number;
  /** oldest held seq (0 when empty) */
  firstSeq: number;
  /** newest committed seq (0 before the first commit) */
  lastSeq: number;
  /** bytes of the database in use (pages not on the free list) */
  bytes: number;
  /** database file plus WAL file, as on disk */
  fileBytes: number;
  gaps: number;
  /** readings appended but not yet committed */
  buffered: number;
  /** write transactions committed by this Store instance */
  commits: number;
}

export interface CorrectionOptions {
  /** clear the unsynced flag of the corrected readings (default true) */
  markSynced?: boolean;
}

interface Pending {
  device: string;
  point: string;
  unit: string;
  value: number | string | null;
  quality: number;
  ts: number;
  mono: number;
  bootId: string;
  unsynced: boolean;
}

interface SeriesInfo {
  device: string;
  point: string;
  unit: string;
}

const DEFAULT_BATCH_READINGS = 500;
const DEFAULT_BATCH_DELAY_MS = 1000;
const DEFAULT_MAX_BUFFERED = 100_000;
const DEFAULT_AGE_CHECK_MS = 60_000;
/** Deleting down to this fraction of maxBytes makes cap deletions rare and large, not one per commit. */
const BYTE_CAP_LOW_WATER = 0.9;
const DELETE_CHUNK = 50_000;
const PAGE_ROWS = 1000;

/**
 * The SQLite store (WAL). Readings are buffered and committed in batches; each gets a gateway-wide
 * seq that is never reused. Implements the Outbox the sync agent reads through.
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
  private readonly pageSize: number;

  private buffer: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** seq the next committed reading gets */
  private nextSeq: number;
  /** newest seq committed (readings) or reserved for a recorded gap */
  private committedSeq: number;
  private commits = 0;
  private pendingGaps: Omit<GapEvent, 'id'>[] = [];

  private readonly seriesIds = new Map<string, number>();
  /** device → point → unit → series id: a cache in front of seriesIds for the ingest path */
  private readonly seriesCache = new Map<string, Map<string, Map<string, number>>>();
  private readonly seriesById = new Map<number, SeriesInfo>();
  private readonly bootIds = new Map<string, { id: number; firstSeq: number }>();
  private readonly bootById = new Map<number, string>();
  private readonly cursors = new Map<string, number>();
  private readonly dirtyCursors = new Set<string>();
  private latestBySeries: Map<string, StoredReading> | null = null;
  private controlTables: ControlTables | null = null;

  /** the incomplete ts block: its number and min/max ts so far */
  private curBlock = -1;
  private curMin = Number.POSITIVE_INFINITY;
  private curMax = Number.NEGATIVE_INFINITY;
  private lastAgeCheck = Number.NEGATIVE_INFINITY;

  private readonly stmts: ReturnType<typeof prepare>;
  private readonly batches: BatchTable;

  private constructor(db: Database.Database, opts: StoreOptions, file: string) {
    this.db = db;
    this.opts = opts;
    this.file = file;
    this.readonly = opts.readonly === true;
    this.batchMaxReadings = opts.batchMaxReadings ?? DEFAULT_BATCH_READINGS;
    this.batchMaxDelayMs = opts.batchMaxDelayMs ?? DEFAULT_BATCH_DELAY_MS;
    this.maxBuffered = opts.maxBufferedReadings ?? DEFAULT_MAX_BUFFERED;
    this.stmts = prepare(db, this.readonly);
    this.batches = new BatchTable(db, this.readonly);
    this.pageSize = db.pragma('page_size', { simple: true }) as number;

    const epoch = this.stmts.getMeta.pluck().get('epoch') as string | undefined;
    if (!epoch)
      throw new LangbiangError('STORE_FAILED', `${file} has no store epoch; it is not a complete Langbiang store`);
    this.epoch = epoch;
    this.loadDictionaries();
    for (const row of this.stmts.allCursors.all() as { name: string; seq: number }[])
      this.cursors.set(row.name, row.seq);
    if (!this.readonly) this.adoptDeliveredAsConfirmed();

    const floor = Number(this.stmts.getMeta.pluck().get('seq_floor') ?? 0);
    const maxSeq = this.batches.maxSeq() ?? 0;
    const maxGap = (this.stmts.maxGapSeq.pluck().get() as number | null) ?? 0;
    this.committedSeq = Math.max(floor, maxSeq, maxGap);
    this.nextSeq = this.committedSeq + 1;
    this.loadCurrentBlock(maxSeq);
  }

  /**
   * Once per store, the first time a release with end-to-end acknowledgement opens it: what the
   * earlier release delivered counts as confirmed (the guarantee it had), and the first batch
   * sent from there tells the city so. A meta key marks it done (no schema version bump: an
   * earlier release can still open the store after a rollback).
   */
  private adoptDeliveredAsConfirmed(): void {
    if (this.stmts.getMeta.pluck().get(CONFIRM_CURSORS_META) !== undefined) return;
    this.db
      .transaction(() => {
        for (const [delivered, confirmed] of [
          [SYNC_CURSOR, CONFIRMED_CURSOR],
          [EVENTS_CURSOR, EVENTS_CONFIRMED_CURSOR],
        ] as const) {
          const d = this.cursors.get(delivered);
          if (d !== undefined && !this.cursors.has(confirmed)) {
            this.cursors.set(confirmed, d);
            this.stmts.putCursor.run(confirmed, d);
          }
        }
        this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(CONFIRM_CURSORS_META, '1');
      })
      .immediate();
  }

  static open(opts: StoreOptions): Store {
    validateOptions(opts);
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
        const version = db.pragma('user_version', { simple: true }) as number;
        checkVersion(version, file);
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
    const normalised = readings.map(normalise);
    for (const p of normalised) this.buffer.push(p);
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
    return rows.map((r) => this.toStored(r));
  }

  /** Outbox fast path of the sync agent: what readAfter returns, as columns (see columns.ts). */
  readColumnsAfter(afterSeq: number, limit: number, maxSeq = Number.MAX_SAFE_INTEGER): ReadingColumns {
    this.assertOpen();
    const cols = this.batches.columns(afterSeq + 1, maxSeq, limit);
    cols.truncate(Math.max(0, limit));
    return {
      count: cols.count,
      seqs: cols.seqs,
      series: cols.series,
      ts: cols.ts,
      quality: cols.quality,
      values: cols.values,
      names: (id) => {
        let s = this.seriesById.get(id);
        if (!s) {
          this.loadDictionaries();
          s = this.seriesById.get(id);
        }
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
    if (this.cursors.get(name) === seq) return;
    this.cursors.set(name, seq);
    this.dirtyCursors.add(name);
    this.schedule();
  }

  gapsAfter(afterId: number): GapEvent[] {
    this.assertOpen();
    return (this.stmts.gapsAfter.all(afterId) as GapRow[]).map(toGap);
  }

  // ---- events (EventRecorder, EventOutbox) ----------------------------------------------------

  /** Records an event for the city now (its own small transaction: events are rare); returns its id. */
  recordEvent(kind: GatewayEventKind, data: Record<string, unknown>): number {
    this.assertWritable();
    let json: string | undefined;
    try {
      json = JSON.stringify(data ?? {});
    } catch (err) {
      throw new LangbiangError('STORE_FAILED', `event ${kind}: data is not JSON-serialisable (${describeError(err)})`);
    }
    if (json === undefined || !json.startsWith('{'))
      throw new LangbiangError('STORE_FAILED', `event ${kind}: data must be an object`);
    if (json.length > MAX_EVENT_DATA_BYTES)
      throw new LangbiangError('STORE_FAILED', `event ${kind}: data is larger than ${MAX_EVENT_DATA_BYTES} bytes`);
    const id = Number(this.stmts.insertEvent.run(kind, this.wallNow(), json).lastInsertRowid);
    if (id % 100 === 0) this.pruneEvents();
    return id;
  }

  eventsAfter(afterId: number, limit: number): GatewayEventRecord[] {
    this.assertOpen();
    const rows = this.stmts.eventsAfter.all(afterId, limit) as {
      id: number;
      kind: GatewayEventKind;
      ts: number;
      data: string;
    }[];
    return rows.map((r) => {
      let data: Record<string, unknown>;
      try {
        data = JSON.parse(r.data) as Record<string, unknown>;
      } catch {
        data = { unreadable: r.data.slice(0, 200) };
      }
      return { id: r.id, kind: r.kind, ts: r.ts, data };
    });
  }

  /** Newest event id ever given (0 when none); ids are never reused, even after pruning. */
  lastEventId(): number {
    this.assertOpen();
    return (this.stmts.maxEventId.pluck().get() as number | null) ?? 0;
  }

  private insertGapEvent(g: GapEvent): void {
    const data = { gapId: g.id, firstSeq: g.firstSeq, lastSeq: g.lastSeq, count: g.count, reason: g.reason };
    this.stmts.insertEvent.run('gap', g.ts, JSON.stringify(data));
  }

  private pruneEvents(): void {
    const acked = this.cursors.get(EVENTS_CONFIRMED_CURSOR) ?? 0;
    this.stmts.pruneEvents.run(Math.min(acked, this.lastEventId() - EVENTS_KEEP));
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
    const desc = opts.order === 'desc';
    let remaining = opts.limit ?? Number.POSITIVE_INFINITY;
    if (remaining <= 0) return;
    let seriesFilter: number[] | null = null;
    if (opts.device !== undefined || opts.point !== undefined) {
      this.loadDictionaries();
      seriesFilter = [];
      for (const [id, s] of this.seriesById) {
        if (
          (opts.device === undefined || s.device === opts.device) &&
          (opts.point === undefined || s.point === opts.point)
        )
          seriesFilter.push(id);
      }
      if (seriesFilter.length === 0) return;
    }
    const from = opts.from ?? Number.MIN_SAFE_INTEGER;
    const to = opts.to ?? Number.MAX_SAFE_INTEGER;
    const byTime = opts.from !== undefined || opts.to !== undefined;
    const ranges = this.seqRanges(byTime ? from : null, to, (opts.afterSeq ?? 0) + 1);
    if (desc) ranges.reverse();

    const wanted = seriesFilter ? new Set(seriesFilter) : null;
    // What was committed when the iteration began: later commits belong to the next query.
    const top = this.batches.maxSeq() ?? 0;
    for (let [lo, hi] of ranges) {
      if (hi > top) hi = top;
      while (lo <= hi && remaining > 0) {
        // Whole batches are decoded, then filtered here; the next page starts past the last row seen.
        const rows = this.batches.rows(lo, hi, PAGE_ROWS, desc);
        if (rows.length === 0) break;
        for (const r of rows) {
          if (byTime && (r[2] < from || r[2] > to)) continue;
          if (wanted && !wanted.has(r[1])) continue;
          yield this.toStored(r);
          if (--remaining <= 0) return;
        }
        if (rows.length < PAGE_ROWS) break;
        if (desc) hi = rows[rows.length - 1]![0] - 1;
        else lo = rows[rows.length - 1]![0] + 1;
      }
    }
  }

  /** Newest committed reading of each device/point, sorted by device then point. */
  latest(): StoredReading[] {
    this.assertOpen();
    if (!this.latestBySeries) this.latestBySeries = this.scanLatest();
    return [...this.latestBySeries.values()].sort((a, b) =>
      a.device === b.device ? cmp(a.point, b.point) : cmp(a.device, b.device),
    );
  }

  stats(): StoreStats {
    this.assertOpen();
    const first = this.batches.minSeq() ?? 0;
    const maxSeq = this.batches.maxSeq() ?? 0;
    let readings = 0;
    if (first > 0) {
      // Held seqs are contiguous except where an ingest_overflow gap reserved seqs that never existed.
      const holes = (this.stmts.overflowHoles.pluck().get(first, maxSeq) as number | null) ?? 0;
      readings = maxSeq - first + 1 - holes;
    }
    return {
      readings,
      firstSeq: first,
      lastSeq: this.committedSeq,
      bytes: this.usedBytes(),
      fileBytes: fileSize(this.file) + fileSize(`${this.file}-wal`),
      gaps: this.stmts.countGaps.pluck().get() as number,
      buffered: this.buffer.length,
      commits: this.commits,
    };
  }

  // ---- time correction ------------------------------------------------------------------------

  /**
   * Shifts the wall time of the unsynced readings of one boot by stepMs (the clock step seen when
   * NTP synchronised), committed and still buffered alike; returns how many were corrected.
   */
  correctUnsyncedTimestamps(bootId: string, stepMs: number, opts: CorrectionOptions = {}): number {
    if (!Number.isFinite(stepMs))
      throw new LangbiangError('STORE_FAILED', `clock step must be a finite number of ms, got ${stepMs}`);
    const step = Math.round(stepMs);
    return this.correct(bootId, opts.markSynced !== false, (p) => p.ts + step);
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
    return this.correct(bootId, opts.markSynced !== false, (p) => p.mono + offset);
  }

  /** Applies the caps now (also done after commits); returns the gaps recorded. */
  enforceRetention(): GapEvent[] {
    this.assertWritable();
    const gaps: GapEvent[] = [];
    this.enforceAgeCap(gaps);
    this.enforceByteCap(gaps);
    return gaps;
  }

  // ---- internals: commit ----------------------------------------------------------------------

  private commitInBackground(): void {
    try {
      this.clearTimer();
      this.commit();
    } catch (err) {
      const e = isLangbiangError(err)
        ? err
        : new LangbiangError('STORE_FAILED', describeError(err), undefined, { cause: err });
      if (this.opts.onError) this.opts.onError(e);
      else process.stderr.write(`langbiang store: commit failed, will retry: ${e.message}\n`);
      this.schedule();
    }
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    if (this.buffer.length === 0 && this.dirtyCursors.size === 0) return;
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

  private commit(): number {
    if (this.buffer.length === 0 && this.dirtyCursors.size === 0 && this.pendingGaps.length === 0) return 0;
    const batch = this.buffer;
    const newSeries: string[] = [];
    const newBoots: string[] = [];
    let seq = this.nextSeq;
    let block = this.curBlock;
    let bMin = this.curMin;
    let bMax = this.curMax;
    const gapRows: GapEvent[] = [];
    const s = this.stmts;
    try {
      this.db
        .transaction(() => {
          // Another writer on the same file (never intended) must not make us reuse its seqs.
          const maxSeq = this.batches.maxSeq() ?? 0;
          if (maxSeq >= seq) seq = maxSeq + 1;
          for (const g of this.pendingGaps) {
            const info = s.insertGap.run(g.firstSeq, g.lastSeq, g.count, g.reason, g.ts);
            const gap = { id: Number(info.lastInsertRowid), ...g };
            this.insertGapEvent(gap);
            gapRows.push(gap);
          }
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
            const series = this.seriesId(p, newSeries);
            const boot = this.bootRowId(p.bootId, seq, newBoots);
            enc.add(series, p.ts, p.mono, p.value, p.quality, p.unsynced ? FLAG_UNSYNCED : 0, boot);
            const b = Math.floor(seq / TS_BLOCK_SIZE);
            if (b !== block) {
              if (block >= 0 && bMin <= bMax) s.putBlock.run(block, bMin, bMax);
              block = b;
              bMin = Number.POSITIVE_INFINITY;
              bMax = Number.NEGATIVE_INFINITY;
            }
            if (p.ts < bMin) bMin = p.ts;
            if (p.ts > bMax) bMax = p.ts;
            seq++;
          }
          this.batches.insertEncoded(rowFirst);
          this.writeCursors();
        })
        .immediate();
    } catch (err) {
      // The transaction rolled back: forget dictionary rows it had added.
      if (newSeries.length > 0) this.seriesCache.clear();
      for (const key of newSeries) {
        const id = this.seriesIds.get(key);
        this.seriesIds.delete(key);
        if (id !== undefined) this.seriesById.delete(id);
      }
      for (const bootId of newBoots) {
        const b = this.bootIds.get(bootId);
        this.bootIds.delete(bootId);
        if (b) this.bootById.delete(b.id);
      }
      throw new LangbiangError('STORE_FAILED', `store commit failed: ${describeError(err)}`, undefined, { cause: err });
    }
    const firstSeq = seq - batch.length;
    this.buffer = [];
    this.pendingGaps = [];
    this.dirtyCursors.clear();
    this.commits++;
    this.nextSeq = seq;
    if (batch.length > 0) this.committedSeq = Math.max(this.committedSeq, seq - 1);
    this.curBlock = block;
    this.curMin = bMin;
    this.curMax = bMax;

    const events = this.opts.events;
    if ((events || this.latestBySeries) && batch.length > 0) {
      const stored = batch.map((p, i) => toStoredFromPending(p, firstSeq + i));
      if (this.latestBySeries) for (const r of stored) this.latestBySeries.set(seriesKey(r.device, r.point), r);
      events?.emit('readings', stored);
    }
    for (const g of gapRows) events?.emit('gap', g);
    this.afterCommit();
    return batch.length;
  }

  private writeCursors(): void {
    for (const name of this.dirtyCursors) this.stmts.putCursor.run(name, this.cursors.get(name)!);
  }

  private seriesId(p: Pending, added: string[]): number {
    // Hot path (every reading of every commit): nested maps on the strings a poll hands over find
    // the id without building a key string; seriesIds stays the authority behind this cache.
    let byPoint = this.seriesCache.get(p.device);
    if (!byPoint) {
      byPoint = new Map();
      this.seriesCache.set(p.device, byPoint);
    }
    let byUnit = byPoint.get(p.point);
    if (!byUnit) {
      byUnit = new Map();
      byPoint.set(p.point, byUnit);
    }
    const cached = byUnit.get(p.unit);
    if (cached !== undefined) return cached;
    const key = `${p.device}\u0000${p.point}\u0000${p.unit}`;
    let id = this.seriesIds.get(key);
    if (id === undefined) {
      const found = this.stmts.findSeries.pluck().get(p.device, p.point, p.unit) as number | undefined;
      id = found ?? Number(this.stmts.insertSeries.run(p.device, p.point, p.unit).lastInsertRowid);
      this.seriesIds.set(key, id);
      this.seriesById.set(id, { device: p.device, point: p.point, unit: p.unit });
      added.push(key);
    }
    byUnit.set(p.unit, id);
    return id;
  }

  private bootRowId(bootId: string, seq: number, added: string[]): number {
    let b = this.bootIds.get(bootId);
    if (!b) {
      const found = this.stmts.findBoot.get(bootId) as { id: number; first_seq: number } | undefined;
      b = found
        ? { id: found.id, firstSeq: found.first_seq }
        : { id: Number(this.stmts.insertBoot.run(bootId, seq).lastInsertRowid), firstSeq: seq };
      this.bootIds.set(bootId, b);
      this.bootById.set(b.id, bootId);
      added.push(bootId);
    }
    return b.id;
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

  // ---- internals: retention -------------------------------------------------------------------

  private afterCommit(): void {
    try {
      this.applyCaps();
    } catch (err) {
      // The batch is committed; a failed deletion is retried after the next commit.
      const e = isLangbiangError(err)
        ? err
        : new LangbiangError('STORE_FAILED', `store retention failed: ${describeError(err)}`, undefined, {
            cause: err,
          });
      if (this.opts.onError) this.opts.onError(e);
      else process.stderr.write(`langbiang store: ${e.message}\n`);
    }
  }

  private applyCaps(): void {
    const gaps: GapEvent[] = [];
    if (this.opts.maxAgeMs !== undefined) {
      const now = this.monoish();
      if (now - this.lastAgeCheck >= (this.opts.ageCheckIntervalMs ?? DEFAULT_AGE_CHECK_MS)) {
        this.lastAgeCheck = now;
        this.enforceAgeCap(gaps);
      }
    }
    this.enforceByteCap(gaps);
  }

  private enforceByteCap(gaps: GapEvent[]): void {
    const maxBytes = this.opts.maxBytes;
    if (maxBytes === undefined) return;
    let used = this.usedBytes();
    if (used <= maxBytes) return;
    const lowWater = maxBytes * BYTE_CAP_LOW_WATER;
    for (let guard = 0; guard < 10_000 && used > lowWater; guard++) {
      const first = this.batches.minSeq();
      const last = this.batches.maxSeq();
      if (first === null || last === null) return;
      const perRow = used / (last - first + 1);
      // Rows share pages with their neighbours and the tree's inner pages: aim a quarter past the
      // estimate so one pass (one gap) usually does it.
      const n = Math.max(1, Math.min(DELETE_CHUNK, Math.ceil((1.25 * (used - lowWater)) / perRow)));
      this.deleteOldest(first, Math.min(last, first + n - 1), 'byte_cap', gaps);
      used = this.usedBytes();
    }
  }

  private enforceAgeCap(gaps: GapEvent[]): void {
    const maxAge = this.opts.maxAgeMs;
    if (maxAge === undefined) return;
    // With an unsynchronised clock "now" may be years off; dropping by it could wipe good data.
    if (this.opts.clock && !this.opts.clock.isSynced()) return;
    const cutoff = this.wallNow() - maxAge;
    for (;;) {
      const first = this.batches.minSeq();
      if (first === null) return;
      // Usually nothing is old enough: learn that from the oldest reading (one batch decoded), not
      // from a whole chunk (50,000 rows of garbage every minute: the gateway's RSS peaks).
      const oldest = this.batches.rows(first, Number.MAX_SAFE_INTEGER, 1)[0];
      if (!oldest || oldest[2] >= cutoff) return;
      const rows = this.batches.rows(first, Number.MAX_SAFE_INTEGER, DELETE_CHUNK);
      if (rows.length > DELETE_CHUNK) rows.length = DELETE_CHUNK;
      // Oldest first by seq: stop at the first reading still young enough, even if some behind it
      // carry older (unsynchronised) times, so the held seqs stay one contiguous range.
      let end = -1;
      for (const [seq, , ts] of rows) {
        if (ts >= cutoff) break;
        end = seq;
      }
      if (end < 0) return;
      this.deleteOldest(first, end, 'age_cap', gaps);
      if (end !== rows[rows.length - 1]![0]) return;
    }
  }

  /** Deletes seqs first..last; records a gap for the part the city had not confirmed. */
  private deleteOldest(first: number, last: number, reason: GapEvent['reason'], gaps: GapEvent[]): void {
    const s = this.stmts;
    const synced = this.cursors.get(CONFIRMED_CURSOR) ?? 0;
    let gap: GapEvent | null = null;
    this.db
      .transaction(() => {
        if (synced >= first) this.batches.deleteRange(first, Math.min(last, synced));
        const from = Math.max(first, synced + 1);
        if (from <= last) {
          const cut = this.batches.deleteRange(from, last);
          const gFirst = cut.lo;
          const gLast = cut.hi;
          if (cut.count > 0 && gFirst !== null && gLast !== null) {
            const ts = this.wallNow();
            const row = s.insertGap.run(gFirst, gLast, cut.count, reason, ts);
            gap = {
              id: Number(row.lastInsertRowid),
              firstSeq: gFirst,
              lastSeq: gLast,
              count: cut.count,
              reason,
              ts,
            };
            this.insertGapEvent(gap);
          }
        }
        s.setSeqFloor.run(String(last), last);
        s.deleteBlocksBelow.run(Math.floor((last + 1) / TS_BLOCK_SIZE));
        this.writeCursors();
      })
      .immediate();
    this.dirtyCursors.clear();
    this.commits++;
    if (gap) {
      gaps.push(gap);
      this.opts.events?.emit('gap', gap);
    }
  }

  private usedBytes(): number {
    const pages = this.stmts.pageCount.pluck().get() as number;
    const free = this.stmts.freelistCount.pluck().get() as number;
    return (pages - free) * this.pageSize;
  }

  // ---- internals: correction ------------------------------------------------------------------

  private correct(bootId: string, markSynced: boolean, newTs: (p: { ts: number; mono: number }) => number): number {
    this.assertWritable();
    let count = 0;
    for (const p of this.buffer) {
      if (p.unsynced && p.bootId === bootId) {
        p.ts = newTs(p);
        if (markSynced) p.unsynced = false;
        count++;
      }
    }
    const boot = this.bootIds.get(bootId) ?? this.loadBoot(bootId);
    if (!boot) return count;
    this.db
      .transaction(() => {
        const t = { ts: 0, mono: 0 };
        count += this.batches.rewrite(boot.firstSeq, (r) => {
          if (r[7] !== boot.id || (r[6] & FLAG_UNSYNCED) === 0) return false;
          t.ts = r[2];
          t.mono = r[3];
          r[2] = newTs(t);
          if (markSynced) r[6] &= ~FLAG_UNSYNCED;
          return true;
        });
        this.rebuildBlocks(Math.floor(boot.firstSeq / TS_BLOCK_SIZE), this.curBlock);
        this.writeCursors();
      })
      .immediate();
    this.dirtyCursors.clear();
    this.commits++;
    this.loadCurrentBlock(this.batches.maxSeq());
    this.latestBySeries = null;
    return count;
  }

  /** Recomputes the ts_blocks rows of the complete blocks fromBlock..toBlock-1 from the readings. */
  private rebuildBlocks(fromBlock: number, toBlock: number): void {
    let lo = fromBlock * TS_BLOCK_SIZE;
    const hi = toBlock * TS_BLOCK_SIZE - 1;
    let block = -1;
    let bMin = Number.POSITIVE_INFINITY;
    let bMax = Number.NEGATIVE_INFINITY;
    const put = () => {
      if (block >= 0 && bMin <= bMax) this.stmts.putBlock.run(block, bMin, bMax);
    };
    while (lo <= hi) {
      const rows = this.batches.rows(lo, hi, PAGE_ROWS);
      if (rows.length === 0) break;
      for (const [seq, , ts] of rows) {
        const b = Math.floor(seq / TS_BLOCK_SIZE);
        if (b !== block) {
          put();
          block = b;
          bMin = Number.POSITIVE_INFINITY;
          bMax = Number.NEGATIVE_INFINITY;
        }
        if (ts < bMin) bMin = ts;
        if (ts > bMax) bMax = ts;
      }
      lo = rows[rows.length - 1]![0] + 1;
    }
    put();
  }

  // ---- internals: reading back ----------------------------------------------------------------

  /** Seq ranges that can hold readings with ts in [from, to] (all seqs when from is null). */
  private seqRanges(from: number | null, to: number, minSeq: number): [number, number][] {
    const top = Number.MAX_SAFE_INTEGER;
    if (from === null) return minSeq <= top ? [[minSeq, top]] : [];
    const ranges: [number, number][] = [];
    for (const block of this.stmts.blocksIn.pluck().all(to, from) as number[]) {
      const lo = Math.max(minSeq, block * TS_BLOCK_SIZE);
      const hi = block * TS_BLOCK_SIZE + TS_BLOCK_SIZE - 1;
      if (lo > hi) continue;
      const prev = ranges[ranges.length - 1];
      if (prev && prev[1] + 1 >= lo) prev[1] = hi;
      else ranges.push([lo, hi]);
    }
    // The incomplete newest block (and whatever a concurrent writer added since) has no row yet.
    const tail = this.readonly ? this.readonlyTailBlock() : this.curBlock;
    if (tail >= 0) {
      const lo = Math.max(minSeq, tail * TS_BLOCK_SIZE);
      const prev = ranges[ranges.length - 1];
      if (prev && prev[1] + 1 >= lo) prev[1] = top;
      else ranges.push([lo, top]);
    }
    return ranges;
  }

  private readonlyTailBlock(): number {
    const b = this.stmts.maxBlock.pluck().get() as number | null;
    return b === null ? 0 : b + 1;
  }

  private scanLatest(): Map<string, StoredReading> {
    const found = new Map<string, StoredReading>();
    const seenSeries = new Set<number>();
    this.loadDictionaries();
    const total = this.seriesById.size;
    let below = Number.MAX_SAFE_INTEGER;
    // Newest first, page by page, until every known series has been seen: no index needed.
    while (seenSeries.size < total) {
      const rows = this.batches.rows(Number.MIN_SAFE_INTEGER, below - 1, PAGE_ROWS, true);
      if (rows.length === 0) break;
      for (const r of rows) {
        if (seenSeries.has(r[1])) continue;
        seenSeries.add(r[1]);
        const sr = this.toStored(r);
        const key = seriesKey(sr.device, sr.point);
        const have = found.get(key);
        if (!have || have.seq < sr.seq) found.set(key, sr);
      }
      below = rows[rows.length - 1]![0];
    }
    return found;
  }

  private toStored(r: RawRow): StoredReading {
    const [seq, seriesId, ts, mono, value, quality, flags, bootRow] = r;
    let series = this.seriesById.get(seriesId);
    let bootId = this.bootById.get(bootRow);
    if (!series || bootId === undefined) {
      this.loadDictionaries();
      series = this.seriesById.get(seriesId);
      bootId = this.bootById.get(bootRow);
    }
    const out: StoredReading = {
      seq,
      device: series?.device ?? `#${seriesId}`,
      point: series?.point ?? `#${seriesId}`,
      value,
      quality: qualityFromCode(quality),
      ts,
      mono,
      bootId: bootId ?? '',
      synced: (flags & FLAG_UNSYNCED) === 0,
    };
    if (series?.unit) out.unit = series.unit;
    return out;
  }

  private loadDictionaries(): void {
    for (const r of this.stmts.allSeries.all() as { id: number; device: string; point: string; unit: string }[]) {
      if (this.seriesById.has(r.id)) continue;
      this.seriesById.set(r.id, { device: r.device, point: r.point, unit: r.unit });
      this.seriesIds.set(`${r.device}\u0000${r.point}\u0000${r.unit}`, r.id);
    }
    for (const r of this.stmts.allBoots.all() as { id: number; boot_id: string; first_seq: number }[]) {
      if (this.bootById.has(r.id)) continue;
      this.bootById.set(r.id, r.boot_id);
      this.bootIds.set(r.boot_id, { id: r.id, firstSeq: r.first_seq });
    }
  }

  private loadBoot(bootId: string): { id: number; firstSeq: number } | undefined {
    const found = this.stmts.findBoot.get(bootId) as { id: number; first_seq: number } | undefined;
    if (!found) return undefined;
    const b = { id: found.id, firstSeq: found.first_seq };
    this.bootIds.set(bootId, b);
    this.bootById.set(b.id, bootId);
    return b;
  }

  private loadCurrentBlock(maxSeq: number | null): void {
    if (!maxSeq) {
      this.curBlock = -1;
      this.curMin = Number.POSITIVE_INFINITY;
      this.curMax = Number.NEGATIVE_INFINITY;
      return;
    }
    this.curBlock = Math.floor(maxSeq / TS_BLOCK_SIZE);
    this.curMin = Number.POSITIVE_INFINITY;
    this.curMax = Number.NEGATIVE_INFINITY;
    for (const [, , ts] of this.batches.rows(this.curBlock * TS_BLOCK_SIZE, Number.MAX_SAFE_INTEGER, TS_BLOCK_SIZE)) {
      if (ts < this.curMin) this.curMin = ts;
      if (ts > this.curMax) this.curMax = ts;
    }
  }

  private wallNow(): number {
    return this.opts.clock ? this.opts.clock.wallNow() : Date.now();
  }

  private monoish(): number {
    return this.opts.clock ? this.opts.clock.monoNow() : performance.now();
  }

  /** The command-result and control-settings tables (command router, cabinet schedules). */
  control(): ControlTables {
    this.assertWritable();
    this.controlTables ??= new ControlTables(this.db);
    return this.controlTables;
  }

  private assertOpen(): void {
    if (this.closed) throw new LangbiangError('STORE_FAILED', 'the store is closed');
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.readonly) throw new LangbiangError('STORE_FAILED', 'the store was opened read-only');
  }
}

// ---- helpers -------------------------------------------------------------------------------

interface GapRow {
  id: number;
  first_seq: number;
  last_seq: number;
  count: number;
  reason: GapEvent['reason'];
  ts: number;
}

function toGap(r: GapRow): GapEvent {
  return { id: r.id, firstSeq: r.first_seq, lastSeq: r.last_seq, count: r.count, reason: r.reason, ts: r.ts };
}

function prepare(db: Database.Database, readonly: boolean) {
  const ro = {
    getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
    allCursors: db.prepare('SELECT name, seq FROM cursors'),
    allSeries: db.prepare('SELECT id, device, point, unit FROM series'),
    allBoots: db.prepare('SELECT id, boot_id, first_seq FROM boots'),
    findBoot: db.prepare('SELECT id, first_seq FROM boots WHERE boot_id = ?'),
    findSeries: db.prepare('SELECT id FROM series WHERE device = ? AND point = ? AND unit = ?'),
    maxGapSeq: db.prepare('SELECT max(last_seq) FROM gaps'),
    countGaps: db.prepare('SELECT count(*) FROM gaps'),
    overflowHoles: db.prepare(
      "SELECT sum(count) FROM gaps WHERE reason = 'ingest_overflow' AND first_seq > ? AND last_seq < ?",
    ),
    gapsAfter: db.prepare('SELECT id, first_seq, last_seq, count, reason, ts FROM gaps WHERE id > ? ORDER BY id'),
    eventsAfter: db.prepare('SELECT id, kind, ts, data FROM events WHERE id > ? ORDER BY id LIMIT ?'),
    maxEventId: db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'events'"),
    blocksIn: db.prepare('SELECT block FROM ts_blocks WHERE min_ts <= ? AND max_ts >= ? ORDER BY block'),
    maxBlock: db.prepare('SELECT max(block) FROM ts_blocks'),
    pageCount: db.prepare('PRAGMA page_count'),
    freelistCount: db.prepare('PRAGMA freelist_count'),
  };
  // Write statements cannot be prepared on a read-only connection; they are never used there.
  const never = ro.getMeta;
  const w = (sql: string) => (readonly ? never : db.prepare(sql));
  return {
    ...ro,
    insertSeries: w('INSERT INTO series (device, point, unit) VALUES (?, ?, ?)'),
    insertBoot: w('INSERT INTO boots (boot_id, first_seq) VALUES (?, ?)'),
    insertGap: w('INSERT INTO gaps (first_seq, last_seq, count, reason, ts) VALUES (?, ?, ?, ?, ?)'),
    insertEvent: w('INSERT INTO events (kind, ts, data) VALUES (?, ?, ?)'),
    pruneEvents: w('DELETE FROM events WHERE id <= ?'),
    putCursor: w('INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq'),
    putBlock: w('INSERT OR REPLACE INTO ts_blocks (block, min_ts, max_ts) VALUES (?, ?, ?)'),
    deleteBlocksBelow: w('DELETE FROM ts_blocks WHERE block < ?'),
    setSeqFloor: w("UPDATE meta SET value = ? WHERE key = 'seq_floor' AND CAST(value AS INTEGER) < ?"),
  };
}

const QUALITY_SET = new Set<string>(QUALITIES);

function normalise(r: Reading, i: number): Pending {
  const bad = (what: string): never => {
    throw new LangbiangError('STORE_FAILED', `reading ${i} (${String(r?.device)}/${String(r?.point)}): ${what}`);
  };
  if (!r || typeof r !== 'object') bad('not an object');
  if (typeof r.device !== 'string' || r.device === '') bad('device must be a non-empty string');
  if (typeof r.point !== 'string' || r.point === '') bad('point must be a non-empty string');
  if (!QUALITY_SET.has(r.quality)) bad(`unknown quality ${JSON.stringify(r.quality)}`);
  if (!Number.isFinite(r.ts)) bad('ts must be a finite number');
  if (!Number.isFinite(r.mono)) bad('mono must be a finite number');
  if (typeof r.bootId !== 'string') bad('bootId must be a string');
  let value: number | string | null = r.value;
  let quality: Quality = r.quality;
  if (typeof value === 'boolean') value = value ? 1 : 0;
  if (typeof value === 'number' && !Number.isFinite(value)) {
    // Infinity has no place in CSV/JSON exports; NaN would silently become NULL in SQLite anyway.
    value = null;
    if (quality === 'good') quality = 'decode_error';
  }
  if (value !== null && typeof value !== 'number' && typeof value !== 'string')
    bad('value must be a number, a string or null');
  return {
    device: r.device,
    point: r.point,
    unit: r.unit ?? '',
    value,
    quality: qualityCode(quality),
    ts: Math.trunc(r.ts),
    mono: Math.trunc(r.mono),
    bootId: r.bootId,
    unsynced: !r.synced,
  };
}

function toStoredFromPending(p: Pending, seq: number): StoredReading {
  const out: StoredReading = {
    seq,
    device: p.device,
    point: p.point,
    value: p.value,
    quality: qualityFromCode(p.quality),
    ts: p.ts,
    mono: p.mono,
    bootId: p.bootId,
    synced: !p.unsynced,
  };
  if (p.unit) out.unit = p.unit;
  return out;
}

function validateOptions(o: StoreOptions): void {
  const bad = (msg: string): never => {
    throw new LangbiangError('STORE_FAILED', `store options: ${msg}`);
  };
  if (!o || typeof o.dataDir !== 'string' || o.dataDir === '') bad('dataDir must be a non-empty path');
  const positive: (keyof StoreOptions)[] = [
    'maxBytes',
    'maxAgeMs',
    'batchMaxReadings',
    'maxBufferedReadings',
    'ageCheckIntervalMs',
  ];
  for (const k of positive) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)))
      bad(`${k} must be a positive number, got ${String(v)}`);
  }
  const d = o.batchMaxDelayMs;
  if (d !== undefined && (typeof d !== 'number' || !(d >= 0) || !Number.isFinite(d)))
    bad(`batchMaxDelayMs must be >= 0, got ${String(d)}`);
  if (o.synchronous !== undefined && o.synchronous !== 'full' && o.synchronous !== 'normal') {
    bad(`synchronous must be 'full' or 'normal', got ${String(o.synchronous)}`);
  }
}

function seriesKey(device: string, point: string): string {
  return `${device}\u0000${point}`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
