import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { describeError, LangbiangError } from '../../gateway/core/errors.js';
import type { Quality } from '../../gateway/core/reading.js';
import type { StatusMessage } from '../protocol/status.js';
import type { EventsBatch, TelemetryBatch } from '../protocol/types.js';
import { LAND_ABOVE_READINGS, LANDED_MAX_READINGS, Landing } from './sqlite-landing.js';
import type {
  EventQuery,
  GatewayActivity,
  ReadingQuery,
  ReadingSpan,
  ReceivedEvent,
  ReceivedReading,
  ReceiverStore,
  StoredStatus,
  WatermarkRow,
  WriteResult,
} from './store.js';
import {
  type Coverage,
  countUnaccounted,
  eventsCoverage,
  nextWatermark,
  type Range,
  type Stream,
  telemetryCoverage,
  type Watermarks,
} from './watermark.js';

/** 'LbR1': marks the file as a receiver database (the gateway's own store is 'LbE1'). */
const APPLICATION_ID = 0x4c625231;

const MIGRATIONS: readonly string[] = [
  // v1
  `CREATE TABLE readings (
     gateway TEXT NOT NULL,
     epoch TEXT NOT NULL,
     seq INTEGER NOT NULL,
     device TEXT NOT NULL,
     point TEXT NOT NULL,
     ts INTEGER NOT NULL,
     value_num REAL,
     value_text TEXT,
     unit TEXT,
     quality TEXT NOT NULL,
     received_at INTEGER NOT NULL,
     PRIMARY KEY (gateway, epoch, seq)
   ) WITHOUT ROWID;
   CREATE INDEX readings_device_ts ON readings (device, ts);
   CREATE TABLE events (
     gateway TEXT NOT NULL,
     epoch TEXT NOT NULL,
     id INTEGER NOT NULL,
     kind TEXT NOT NULL,
     ts INTEGER NOT NULL,
     data TEXT NOT NULL,
     received_at INTEGER NOT NULL,
     PRIMARY KEY (gateway, epoch, id)
   ) WITHOUT ROWID;`,
  // v2: end-to-end acknowledgement (watermark.ts). Existing data gets no watermark: a gateway's
  // first batch after its update starts from its confirmed cursor and says so, which sets it.
  `CREATE TABLE watermarks (
     gateway TEXT NOT NULL,
     epoch TEXT NOT NULL,
     stream TEXT NOT NULL,
     upto INTEGER NOT NULL,
     settled INTEGER NOT NULL DEFAULT 0,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (gateway, epoch, stream)
   ) WITHOUT ROWID;
   CREATE TABLE coverage (
     gateway TEXT NOT NULL,
     epoch TEXT NOT NULL,
     stream TEXT NOT NULL,
     first INTEGER NOT NULL,
     last INTEGER NOT NULL,
     PRIMARY KEY (gateway, epoch, stream, first)
   ) WITHOUT ROWID;`,
  // v3: the fleet view keeps each gateway's latest retained status; the archive and open data
  // read a day at a time, by reading time.
  `CREATE TABLE gateway_status (
     gateway TEXT PRIMARY KEY,
     state TEXT NOT NULL,
     status_ts INTEGER NOT NULL,
     received_at INTEGER NOT NULL,
     status TEXT NOT NULL
   ) WITHOUT ROWID;
   CREATE INDEX readings_ts ON readings (ts);`,
  // v4: a backlog's large batches land whole and become rows when the receiver is idle
  // (sqlite-landing.ts); `body` is the telemetry message as it came.
  `CREATE TABLE landed (
     id INTEGER PRIMARY KEY,
     gateway TEXT NOT NULL,
     epoch TEXT NOT NULL,
     first_seq INTEGER NOT NULL,
     last_seq INTEGER NOT NULL,
     readings INTEGER NOT NULL,
     received_at INTEGER NOT NULL,
     body BLOB NOT NULL
   );`,
];
/** One stream's stored acknowledgement state (watermark.ts), and whether its row exists. */
interface StreamState {
  known: boolean;
  upto: number;
  settled: number;
  above: Range[];
}

/** The SQLite file's schema version (PostgreSQL's has its own: store.ts). */
const SCHEMA_VERSION = MIGRATIONS.length;
/** The oldest schema a read-only opener (export, archive, fleet) reads as it is. */
const READABLE_FROM = 3;
/** The schema that added `landed`. */
const LANDED_FROM = 4;

/** Columns of one row of `readings`, in the order the INSERTs below bind them. */
const READING_COLUMNS = 11;
/**
 * Rows per multi-row INSERT. One statement per reading paid a call into the driver, a reset and
 * an 11-value bind each; 100 rows per statement (1,100 values, under SQLite's 32,766 limit) cut
 * the receiver's CPU per million readings by ~15% (docs/performance.md, "Drain"). A batch's rest
 * goes in statements of 10 and of 1.
 */
const INSERT_CHUNKS = [100, 10, 1] as const;
function insertReadingsSql(rows: number): string {
  const one = `(${Array(READING_COLUMNS).fill('?').join(', ')})`;
  return `INSERT INTO readings (gateway, epoch, seq, device, point, ts, value_num, value_text, unit, quality, received_at)
          VALUES ${Array(rows).fill(one).join(', ')} ON CONFLICT DO NOTHING`;
}

/** A connection that writes: WAL, durable commits, the statement journal in memory. */
function setUpWriter(db: Database.Database): void {
  // A multi-row INSERT keeps a statement journal (to undo its own rows if one fails); on a file
  // it spilled to a temporary file: six times the writes of the one-row statements.
  db.pragma('temp_store = MEMORY');
  db.pragma('journal_mode = WAL');
  // a message is acknowledged after its commit: the commit must survive a power cut
  db.pragma('synchronous = FULL');
}

/** The multi-row INSERT statements, by rows per statement (INSERT_CHUNKS). */
function prepareInserts(db: Database.Database): Map<number, Database.Statement> {
  return new Map(INSERT_CHUNKS.map((n) => [n, db.prepare(insertReadingsSql(n))]));
}

/**
 * Every reading of the batch, in statements of INSERT_CHUNKS rows, inside the caller's
 * transaction; returns how many were new (a duplicate key is skipped, not an error).
 */
function insertRows(stmts: Map<number, Database.Statement>, b: TelemetryBatch, receivedAt: number): number {
  const rs = b.readings;
  let inserted = 0;
  let i = 0;
  for (const rows of INSERT_CHUNKS) {
    if (rs.length - i < rows) continue;
    const stmt = stmts.get(rows)!;
    // one bind array per statement size, refilled: no per-reading allocation
    const args: unknown[] = new Array(rows * READING_COLUMNS);
    for (; rs.length - i >= rows; i += rows) {
      for (let j = 0, o = 0; j < rows; j++, o += READING_COLUMNS) {
        const r = rs[i + j]!;
        const v = r.value;
        args[o] = b.gateway;
        args[o + 1] = b.epoch;
        args[o + 2] = r.seq;
        args[o + 3] = r.device;
        args[o + 4] = r.point;
        args[o + 5] = r.ts;
        // numbers and strings apart, so a number stays a number (splitValue)
        args[o + 6] = typeof v === 'number' ? v : null;
        args[o + 7] = typeof v === 'string' ? v : null;
        args[o + 8] = r.unit;
        args[o + 9] = r.quality;
        args[o + 10] = receivedAt;
      }
      inserted += stmt.run(args).changes;
    }
  }
  return inserted;
}

/**
 * The default backend: one SQLite file, for one receiver (a pilot, a lab, a small city). WAL with
 * synchronous=FULL: a message is acknowledged only after its commit, so the commit must survive
 * a power cut too. Several receivers may share the file (busy timeout), but scale-out is what the
 * PostgreSQL backend is for.
 */
export class SqliteReceiverStore implements ReceiverStore {
  readonly backend = 'sqlite' as const;
  readonly location: string;
  private db: Database.Database | undefined;
  private readonly readonly: boolean;
  private readonly onError: ((message: string) => void) | undefined;
  /** messages of more readings than this land whole */
  private readonly landAbove: number;
  private landing: Landing | undefined;
  /** the file's schema version when it was opened (before any upgrade) */
  private schemaFound = 0;
  private stmts:
    | {
        /** by rows per statement: INSERT_CHUNKS */
        insertReadings: Map<number, Database.Statement>;
        insertEvent: Database.Statement;
        getMark: Database.Statement;
        putMark: Database.Statement;
        getCoverage: Database.Statement;
        clearCoverage: Database.Statement;
        putCoverage: Database.Statement;
      }
    | undefined;

  constructor(
    path: string,
    opts: { readonly?: boolean; onError?: (message: string) => void; landAbove?: number } = {},
  ) {
    this.location = resolve(path);
    this.readonly = opts.readonly === true;
    this.onError = opts.onError;
    this.landAbove = opts.landAbove ?? LAND_ABOVE_READINGS;
  }

  async init(): Promise<void> {
    if (this.readonly && !existsSync(this.location)) {
      throw new LangbiangError('USAGE', `no receiver database at ${this.location}`);
    }
    try {
      if (!this.readonly) mkdirSync(dirname(this.location), { recursive: true });
      this.db = new Database(this.location, { readonly: this.readonly, fileMustExist: this.readonly });
      this.db.pragma('busy_timeout = 10000');
      if (!this.readonly) setUpWriter(this.db);
    } catch (err) {
      throw new LangbiangError(
        'STORE_FAILED',
        `cannot open the receiver database ${this.location}: ${describeError(err)}`,
        undefined,
        {
          cause: err,
        },
      );
    }
    this.migrate();
    if (!this.readonly) {
      this.stmts = {
        insertReadings: prepareInserts(this.db),
        insertEvent: this.db.prepare(
          `INSERT INTO events (gateway, epoch, id, kind, ts, data, received_at)
           VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        ),
        getMark: this.db.prepare('SELECT upto, settled FROM watermarks WHERE gateway = ? AND epoch = ? AND stream = ?'),
        putMark: this.db.prepare(
          `INSERT INTO watermarks (gateway, epoch, stream, upto, settled, updated_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (gateway, epoch, stream) DO UPDATE SET upto = excluded.upto, settled = excluded.settled,
             updated_at = excluded.updated_at`,
        ),
        getCoverage: this.db.prepare(
          'SELECT first, last FROM coverage WHERE gateway = ? AND epoch = ? AND stream = ? ORDER BY first',
        ),
        clearCoverage: this.db.prepare('DELETE FROM coverage WHERE gateway = ? AND epoch = ? AND stream = ?'),
        putCoverage: this.db.prepare(
          'INSERT INTO coverage (gateway, epoch, stream, first, last) VALUES (?, ?, ?, ?, ?)',
        ),
      };
      this.landing = new Landing(this.db, (b, at) => this.insertReadings(b, at), { onError: this.onError });
      // batches landed before a stop or a crash become rows once the receiver is idle
      if (this.landing.pending() > 0) this.landing.touched();
    }
  }

  /**
   * Before a query of `readings`: what is landed becomes rows first. A read-only opener (export,
   * archive, fleet, a test watching the city) does it through a connection of its own, at each
   * query, since the receiver keeps landing while it reads — the same idempotent work the receiver
   * does when idle, and it changes nothing a reader can tell.
   */
  private settle(): void {
    if (this.landing) this.landing.expandAll();
    else this.expandForReader();
  }

  private expandForReader(): void {
    if (this.schemaFound < LANDED_FROM) return;
    const has = this.must().prepare('SELECT 1 FROM landed LIMIT 1').get();
    if (!has) return;
    let writer: Database.Database | undefined;
    try {
      writer = new Database(this.location, { fileMustExist: true });
      writer.pragma('busy_timeout = 10000');
      setUpWriter(writer);
      const inserts = prepareInserts(writer);
      new Landing(writer, (b, at) => insertRows(inserts, b, at)).expandAll();
    } catch (err) {
      throw new LangbiangError(
        'STORE_FAILED',
        `${this.location} holds readings landed but not yet expanded into rows, and they cannot be expanded from here (${describeError(err)}): run this again where the database is writable, or once the receiver has been idle for a second`,
        undefined,
        { cause: err },
      );
    } finally {
      writer?.close();
    }
  }

  private migrate(): void {
    const db = this.must();
    const found = db.pragma('user_version', { simple: true }) as number;
    const appId = db.pragma('application_id', { simple: true }) as number;
    if (appId !== 0 && appId !== APPLICATION_ID) {
      throw new LangbiangError(
        'STORE_FAILED',
        `${this.location} is an SQLite database of another program, not a receiver database`,
      );
    }
    if (found > SCHEMA_VERSION) {
      throw new LangbiangError(
        'STORE_SCHEMA_TOO_NEW',
        `${this.location} has receiver schema version ${found}; this release knows up to ${SCHEMA_VERSION}: upgrade langbiang`,
      );
    }
    this.schemaFound = found;
    if (found === SCHEMA_VERSION) return;
    // v3 has every table a reader queries (v4 only adds `landed`): export and archive work on a file
    // whose receiver has not been upgraded yet
    if (this.readonly && found >= READABLE_FROM) return;
    if (this.readonly && found > 0) {
      throw new LangbiangError(
        'USAGE',
        `${this.location} has receiver schema version ${found}, older than this release reads: start \`langbiang receiver\` on it once (it upgrades the file)`,
      );
    }
    if (this.readonly) {
      throw new LangbiangError('USAGE', `${this.location} is not a receiver database (run the receiver on it first)`);
    }
    db.transaction(() => {
      for (let v = found; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }).immediate();
  }

  private must(): Database.Database {
    if (!this.db) throw new LangbiangError('STORE_FAILED', 'the receiver database is closed');
    return this.db;
  }

  /**
   * `payload`: the message as it came, kept as is when the batch lands (sqlite-landing.ts). A
   * landed batch's `inserted` counts its readings that the database did not account for before
   * (the watermark and the ranges above it); its rows are written later.
   */
  async writeTelemetry(b: TelemetryBatch, receivedAt: number, payload?: Uint8Array): Promise<WriteResult> {
    const db = this.must();
    const landing = this.landing!;
    const lands = b.readings.length > this.landAbove;
    let inserted = 0;
    let watermarks!: Watermarks;
    try {
      // a receiver that is never idle still turns what it landed into rows, at the rate of row inserts
      if (lands && landing.pending() > LANDED_MAX_READINGS) landing.expandChunk();
      db.transaction(() => {
        let readings: StreamState | undefined;
        if (lands) {
          // landed even when every seq is accounted for: the rows' key, not the watermark, is what dedupes
          readings = this.streamState(b.gateway, b.epoch, 'readings');
          inserted = countUnaccounted(b.readings, readings);
          landing.land(b, receivedAt, payload);
        } else {
          inserted = this.insertReadings(b, receivedAt);
        }
        watermarks = this.advance(b.gateway, b.epoch, telemetryCoverage(b), receivedAt, readings);
      }).immediate();
    } catch (err) {
      throw storeError(err);
    }
    if (lands) landing.touched();
    return { inserted, duplicates: b.readings.length - inserted, watermarks, landed: lands };
  }

  private insertReadings(b: TelemetryBatch, receivedAt: number): number {
    return insertRows(this.stmts!.insertReadings, b, receivedAt);
  }

  async writeEvents(b: EventsBatch, receivedAt: number): Promise<WriteResult> {
    const db = this.must();
    const ins = this.stmts!.insertEvent;
    let inserted = 0;
    let watermarks!: Watermarks;
    try {
      db.transaction(() => {
        for (const e of b.events) {
          inserted += ins.run(b.gateway, b.epoch, e.id, e.kind, e.ts, JSON.stringify(e.data), receivedAt).changes;
        }
        watermarks = this.advance(b.gateway, b.epoch, eventsCoverage(b), receivedAt);
      }).immediate();
    } catch (err) {
      throw storeError(err);
    }
    return { inserted, duplicates: b.events.length - inserted, watermarks };
  }

  /**
   * Inside the write's transaction (SQLite has one writer at a time: nothing else moves them).
   * `readings`: the readings stream's state if the caller has read it already.
   */
  private advance(gateway: string, epoch: string, c: Coverage, now: number, readings?: StreamState): Watermarks {
    return {
      seq: this.advanceStream(gateway, epoch, 'readings', c.readings, c.settledReadings, now, readings),
      events: this.advanceStream(gateway, epoch, 'events', c.events, c.settledEvents, now),
    };
  }

  /** One stream's stored watermark, settled point and ranges above it. */
  private streamState(gateway: string, epoch: string, stream: Stream): StreamState {
    const s = this.stmts!;
    const row = s.getMark.get(gateway, epoch, stream) as { upto: number; settled: number } | undefined;
    const above = (s.getCoverage.all(gateway, epoch, stream) as { first: number; last: number }[]).map(
      (r) => [r.first, r.last] as const,
    );
    return { known: row !== undefined, upto: row?.upto ?? 0, settled: row?.settled ?? 0, above };
  }

  private advanceStream(
    gateway: string,
    epoch: string,
    stream: Stream,
    added: Range[],
    settled: number | undefined,
    now: number,
    state?: StreamState,
  ): number {
    if (added.length === 0 && !settled) {
      if (state) return state.upto;
      const row = this.stmts!.getMark.get(gateway, epoch, stream) as { upto: number } | undefined;
      return row?.upto ?? 0;
    }
    const stored = state ?? this.streamState(gateway, epoch, stream);
    const next = nextWatermark(stored, added, settled);
    if (!next.changed && stored.known) return next.upto;
    const s = this.stmts!;
    s.putMark.run(gateway, epoch, stream, next.upto, next.settled, now);
    if (stored.above.length > 0) s.clearCoverage.run(gateway, epoch, stream);
    for (const [first, last] of next.above) s.putCoverage.run(gateway, epoch, stream, first, last);
    return next.upto;
  }

  async watermarks(gateway: string, epoch: string): Promise<Watermarks> {
    const db = this.must();
    const get = db.prepare('SELECT upto FROM watermarks WHERE gateway = ? AND epoch = ? AND stream = ?').pluck();
    return {
      seq: (get.get(gateway, epoch, 'readings') as number | undefined) ?? 0,
      events: (get.get(gateway, epoch, 'events') as number | undefined) ?? 0,
    };
  }

  async *readings(q: ReadingQuery = {}): AsyncIterable<ReceivedReading[]> {
    const db = this.must();
    this.settle();
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.gateway !== undefined) {
      where.push('gateway = ?');
      args.push(q.gateway);
    }
    if (q.device !== undefined) {
      where.push('device = ?');
      args.push(q.device);
    }
    if (q.point !== undefined) {
      where.push('point = ?');
      args.push(q.point);
    }
    if (q.from !== undefined) {
      where.push('ts >= ?');
      args.push(q.from);
    }
    if (q.to !== undefined) {
      where.push('ts <= ?');
      args.push(q.to);
    }
    const pageSize = q.pageSize ?? 5000;
    const cond = where.length ? `${where.join(' AND ')} AND ` : '';
    const stmt = db.prepare(
      `SELECT gateway, epoch, seq, device, point, ts, value_num, value_text, unit, quality FROM readings
       WHERE ${cond}(gateway, epoch, seq) > (?, ?, ?) ORDER BY gateway, epoch, seq LIMIT ?`,
    );
    let after: [string, string, number] = ['', '', -1];
    for (;;) {
      const rows = stmt.all(...args, ...after, pageSize) as SqlReading[];
      if (rows.length === 0) return;
      yield rows.map(toReading);
      const last = rows[rows.length - 1]!;
      after = [last.gateway, last.epoch, last.seq];
      if (rows.length < pageSize) return;
    }
  }

  async events(q: EventQuery = {}): Promise<ReceivedEvent[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.gateway !== undefined) {
      where.push('gateway = ?');
      args.push(q.gateway);
    }
    if (q.kind !== undefined) {
      where.push('kind = ?');
      args.push(q.kind);
    }
    const rows = this.must()
      .prepare(
        `SELECT gateway, epoch, id, kind, ts, data FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY gateway, epoch, id`,
      )
      .all(...args) as { gateway: string; epoch: string; id: number; kind: string; ts: number; data: string }[];
    return rows.map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> }));
  }

  async counts(): Promise<{ readings: number; events: number }> {
    const db = this.must();
    this.settle();
    return {
      readings: db.prepare('SELECT count(*) FROM readings').pluck().get() as number,
      events: db.prepare('SELECT count(*) FROM events').pluck().get() as number,
    };
  }

  async putStatus(st: StatusMessage, receivedAt: number): Promise<void> {
    try {
      this.must()
        .prepare(
          `INSERT INTO gateway_status (gateway, state, status_ts, received_at, status) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (gateway) DO UPDATE SET state = excluded.state, status_ts = excluded.status_ts,
             received_at = excluded.received_at, status = excluded.status`,
        )
        .run(st.gateway, st.state, st.ts, receivedAt, JSON.stringify(st));
    } catch (err) {
      throw storeError(err);
    }
  }

  async statuses(): Promise<StoredStatus[]> {
    const rows = this.must()
      .prepare('SELECT gateway, received_at, status FROM gateway_status ORDER BY gateway')
      .all() as { gateway: string; received_at: number; status: string }[];
    return rows.map((r) => ({ gateway: r.gateway, receivedAt: r.received_at, status: JSON.parse(r.status) }));
  }

  async activity(since: number, until = Number.MAX_SAFE_INTEGER): Promise<GatewayActivity[]> {
    this.settle();
    const rows = this.must()
      .prepare(
        `SELECT gateway, count(*) AS readings, max(ts) AS last_ts, max(received_at) AS last_received
         FROM readings WHERE ts >= ? AND ts <= ? GROUP BY gateway ORDER BY gateway`,
      )
      .all(since, until) as { gateway: string; readings: number; last_ts: number; last_received: number }[];
    return rows.map((r) => ({
      gateway: r.gateway,
      readings: r.readings,
      lastReadingTs: r.last_ts,
      lastReceivedAt: r.last_received,
    }));
  }

  async allWatermarks(): Promise<WatermarkRow[]> {
    const rows = this.must()
      .prepare('SELECT gateway, epoch, stream, upto, updated_at FROM watermarks ORDER BY gateway, epoch, stream')
      .all() as { gateway: string; epoch: string; stream: Stream; upto: number; updated_at: number }[];
    return rows.map((r) => ({
      gateway: r.gateway,
      epoch: r.epoch,
      stream: r.stream,
      upto: r.upto,
      updatedAt: r.updated_at,
    }));
  }

  async readingSpan(): Promise<ReadingSpan | null> {
    this.settle();
    const r = this.must().prepare('SELECT min(ts) AS first, max(ts) AS last FROM readings').get() as {
      first: number | null;
      last: number | null;
    };
    return r.first === null || r.last === null ? null : { first: r.first, last: r.last };
  }

  async dropDaysBefore(before: number): Promise<string[]> {
    this.settle();
    const db = this.must();
    const cutoff = Math.floor(before / 86_400_000) * 86_400_000;
    try {
      const days = db
        .prepare('SELECT DISTINCT ts / 86400000 AS d FROM readings WHERE ts < ? ORDER BY d')
        .pluck()
        .all(cutoff) as number[];
      db.prepare('DELETE FROM readings WHERE ts < ?').run(cutoff);
      return days.map((d) => new Date(d * 86_400_000).toISOString().slice(0, 10));
    } catch (err) {
      throw storeError(err);
    }
  }

  landedReadings(): number {
    return this.landing?.pending() ?? 0;
  }

  async ping(): Promise<void> {
    this.must().prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    this.landing?.close();
    this.landing = undefined;
    this.db?.close();
    this.db = undefined;
  }
}

interface SqlReading {
  gateway: string;
  epoch: string;
  seq: number;
  device: string;
  point: string;
  ts: number;
  value_num: number | null;
  value_text: string | null;
  unit: string | null;
  quality: string;
}

function toReading(r: SqlReading): ReceivedReading {
  return {
    gateway: r.gateway,
    epoch: r.epoch,
    seq: r.seq,
    device: r.device,
    point: r.point,
    ts: r.ts,
    value: r.value_num ?? r.value_text ?? null,
    unit: r.unit,
    quality: r.quality as Quality,
  };
}

function storeError(err: unknown): LangbiangError {
  return new LangbiangError('STORE_FAILED', `receiver database write failed: ${describeError(err)}`, undefined, {
    cause: err,
  });
}
