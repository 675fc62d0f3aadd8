import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import { LangbiangError } from '../core/errors.js';
import { FLAG_UNSYNCED, type RawRow } from './batch-codec.js';
import { BatchTable } from './batch-table.js';

/**
 * Versioned schema. Each entry moves the database from version i to i+1 (PRAGMA user_version);
 * entries are never edited once released, only appended. A database written by a newer release
 * is refused rather than guessed at.
 */
export const MIGRATIONS: readonly ((db: Database.Database) => void)[] = [
  // v1: first release.
  (db) => {
    db.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        device TEXT NOT NULL,
        point TEXT NOT NULL,
        unit TEXT NOT NULL DEFAULT '',
        UNIQUE (device, point, unit)
      );
      CREATE TABLE boots (id INTEGER PRIMARY KEY, boot_id TEXT NOT NULL UNIQUE, first_seq INTEGER NOT NULL);
      -- One row per reading, kept small: SD cards pay for every byte. No secondary index: an index
      -- keyed by series puts one insert point per series in every commit (one page write each),
      -- which alone would cost many times the row itself. Time ranges go through ts_blocks.
      -- value has REAL affinity so integral numbers are stored as compact integers; string points
      -- are stored as UTF-8 BLOBs, which affinity never converts.
      CREATE TABLE readings (
        seq INTEGER PRIMARY KEY,
        series INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        mono INTEGER NOT NULL,
        value REAL,
        quality INTEGER NOT NULL,
        flags INTEGER NOT NULL,
        boot INTEGER NOT NULL
      );
      -- min/max ts of each complete block of 1024 seqs: lets a time-range query skip blocks
      -- without a ts index, whatever order the wall clock went in.
      CREATE TABLE ts_blocks (block INTEGER PRIMARY KEY, min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL);
      CREATE TABLE cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE gaps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        count INTEGER NOT NULL,
        reason TEXT NOT NULL,
        ts INTEGER NOT NULL
      );
    `);
    // The epoch is born with the database: a new file (even at the same path) is a new seq space.
    const setMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    setMeta.run('epoch', randomBytes(16).toString('hex'));
    setMeta.run('seq_floor', '0');
  },
  // v2: events synced to the city (gaps, command audit, alarms…). AUTOINCREMENT: an id is never
  // reused even after the newest rows are deleted, so the sync agent's events cursor stays valid.
  // Gaps recorded before this release are copied in so they are synced too.
  (db) => {
    db.exec(`
      CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        ts INTEGER NOT NULL,
        data TEXT NOT NULL
      );
      INSERT INTO events (kind, ts, data)
        SELECT 'gap', ts, json_object('gapId', id, 'firstSeq', first_seq, 'lastSeq', last_seq, 'count', count, 'reason', reason)
        FROM gaps ORDER BY id;
    `);
  },
  // v3: one row per commit instead of one per reading (batch-codec.ts). A commit of 100 readings
  // used to rewrite page 1, the right-most interior page, the last leaf and three new leaves; a
  // packed row of ~7 bytes per reading touches page 1, one leaf and its overflow pages. Readings,
  // seqs, gaps, cursors and ts_blocks are kept as they are; rows of consecutive seqs are packed
  // up to V3_ROW_READINGS at a time (a seq hole — a gap — starts a new row).
  (db) => {
    db.exec('CREATE TABLE batches (seq INTEGER PRIMARY KEY, n INTEGER NOT NULL, data BLOB NOT NULL);');
    const table = new BatchTable(db, false);
    const page = db
      .prepare(
        'SELECT seq, series, ts, mono, value, quality, flags, boot FROM readings WHERE seq > ? ORDER BY seq LIMIT ?',
      )
      .raw();
    let after = Number.MIN_SAFE_INTEGER;
    let row: RawRow[] = [];
    for (;;) {
      const rows = page.all(after, 50_000) as [number, number, number, number, unknown, number, number, number][];
      for (const [seq, series, ts, mono, v, quality, flags, boot] of rows) {
        const prev = row[row.length - 1];
        if (row.length >= V3_ROW_READINGS || (prev && prev.seq + 1 !== seq)) {
          table.insertRows(row);
          row = [];
        }
        const value = Buffer.isBuffer(v) ? v.toString('utf8') : typeof v === 'number' ? v : null;
        // Codes beyond the known qualities read back as decode_error (qualityFromCode): keep that.
        row.push({
          seq,
          series,
          ts,
          mono,
          value,
          quality: quality >= 0 && quality <= 7 ? quality : 5,
          flags: flags & FLAG_UNSYNCED,
          boot,
        });
      }
      if (rows.length < 50_000) break;
      after = rows[rows.length - 1]![0];
    }
    table.insertRows(row);
    db.exec('DROP TABLE readings;');
  },
];

/** Readings per row when v3 repacks an older store (a commit's default batch). */
const V3_ROW_READINGS = 500;

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * The migrations after which a store stays readable by a release that knows only the version
 * before (they only add: a table, a column with a default, rows older code ignores). A release
 * rolled back after such a migration still opens the store, and keeps every reading the newer one
 * stored. A migration that is not listed here makes every older release refuse the store, so an
 * update that brings one is refused as long as the release it replaces could not read it
 * (docs/operations.md, "Updating gateways": a breaking change ships as a reader release first).
 */
const BACKWARD_READABLE: ReadonlySet<number> = new Set<number>([]);

/** The lowest schema version a release must know to read a store written at `version`. */
export function readVersionOf(version: number): number {
  for (let v = version; v >= 1; v--) if (!BACKWARD_READABLE.has(v)) return v;
  return 0;
}

/** What this release writes: stores that releases of schema READ_VERSION and newer can read. */
export const READ_VERSION = readVersionOf(SCHEMA_VERSION);
/** 'LbE1': marks a file as a Langbiang store so a stray SQLite file is not mistaken for one. */
export const APPLICATION_ID = 0x4c624531;

/** A store's versions: the schema it has, and the lowest schema a reader must know. */
export interface StoreVersions {
  version: number;
  readVersion: number;
}

/** Read from an open database; a store written before read versions were recorded needs its own version. */
export function storeVersions(db: Database.Database): StoreVersions {
  const version = db.pragma('user_version', { simple: true }) as number;
  let readVersion = version;
  try {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'read_version'").get() as { value: string } | undefined;
    const n = row ? Number(row.value) : Number.NaN;
    if (Number.isSafeInteger(n) && n >= 0 && n <= version) readVersion = n;
  } catch {
    // no meta table yet: a new or very old store
  }
  return { version, readVersion };
}

/**
 * Brings the schema up to date in one transaction; returns the version found before. A store of a
 * newer release that this one can read (its read version is not above ours) is used as it is.
 */
export function migrate(db: Database.Database, file: string): number {
  const found = storeVersions(db);
  checkVersion(found, file);
  const appId = db.pragma('application_id', { simple: true }) as number;
  if (appId !== 0 && appId !== APPLICATION_ID) {
    throw new LangbiangError('STORE_FAILED', `${file} is an SQLite database of another program, not a Langbiang store`);
  }
  if (found.version >= SCHEMA_VERSION) return found.version;
  db.transaction(() => {
    for (let v = found.version; v < SCHEMA_VERSION; v++) MIGRATIONS[v]!(db);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    const setMeta = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
    setMeta.run('schema_version', String(SCHEMA_VERSION));
    setMeta.run('read_version', String(READ_VERSION));
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
  return found.version;
}

export function checkVersion(found: StoreVersions, file: string): void {
  if (found.version > SCHEMA_VERSION && found.readVersion > SCHEMA_VERSION) {
    throw new LangbiangError(
      'STORE_SCHEMA_TOO_NEW',
      `${file} has store schema version ${found.version}, newer than this release understands (${SCHEMA_VERSION}); upgrade the gateway software`,
      { found: found.version, readVersion: found.readVersion, supported: SCHEMA_VERSION },
    );
  }
}
