import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describeError } from '../core/errors.js';
import type { EventBus } from '../core/events.js';
import type { StoredReading } from '../core/reading.js';
import type { Store } from '../store/index.js';
import { type Agg, type Downsampled, downsample, fold, stepFor } from './downsample.js';

export const HISTORY_FILE = 'history.db';

/** Resolutions kept: minutes for the last days, quarter hours for as long as the store keeps readings. */
const TIERS = [
  { name: 'r1m', res: 60_000, keepMs: 3 * 86_400_000 },
  { name: 'r15m', res: 900_000, keepMs: 0 /* = storage maxAge */ },
] as const;
type TierName = (typeof TIERS)[number]['name'];

/** Below this range the raw readings are read from the store (a time range scan via ts_blocks). */
const RAW_MAX_RANGE_MS = 2 * 3_600_000;
const FLUSH_MS = 60_000;
const BACKFILL_CHUNK = 5000;
const BACKFILL_DAYS = 31;
const MIN_PLAUSIBLE_TS = Date.UTC(2020, 0, 1);

export interface HistoryQuery {
  device: string;
  point: string;
  from: number;
  to: number;
  maxPoints: number;
}

export interface HistorySeries extends Downsampled {
  device: string;
  point: string;
  from: number;
  to: number;
  source: 'raw' | TierName;
}

/**
 * Per-minute and per-quarter-hour min/max/sum/count of every numeric series, in its own small
 * SQLite file beside the store (history.db). The store has no (series, ts) index on purpose (SD
 * writes); this rollup is what lets a phone ask for 30 days of one sensor and get an answer at once.
 * It is derived data: written once a minute with synchronous=NORMAL, rebuilt from the store after a
 * crash (it remembers the last store seq it folded in), and safe to delete.
 */
export class History {
  private readonly db: Database.Database;
  private readonly acc = new Map<TierName, Map<string, Map<number, Agg>>>();
  private readonly seriesIds = new Map<string, number>();
  private folded = 0;
  private backfillUpTo = 0;
  private backfillPending = true;
  private maxLive = 0;
  private timer: NodeJS.Timeout | null = null;
  private off: (() => void) | null = null;
  private closed = false;
  private readonly stmts;

  constructor(
    dataDir: string,
    private readonly store: Store,
    events: EventBus,
    private readonly opts: { maxAgeMs: number; onError?: (msg: string) => void; now?: () => number },
  ) {
    this.db = new Database(join(dataDir, HISTORY_FILE));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    // a small page cache: the gateway's memory target counts every SQLite connection
    this.db.pragma('cache_size = -512');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, device TEXT NOT NULL, point TEXT NOT NULL, UNIQUE (device, point));
      ${TIERS.map(
        (
          t,
        ) => `CREATE TABLE IF NOT EXISTS ${t.name} (series INTEGER NOT NULL, bucket INTEGER NOT NULL, min REAL NOT NULL,
          max REAL NOT NULL, sum REAL NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (series, bucket)) WITHOUT ROWID;`,
      ).join('\n')}
    `);
    this.stmts = {
      getMeta: this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
      setMeta: this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      findSeries: this.db.prepare('SELECT id FROM series WHERE device = ? AND point = ?').pluck(),
      addSeries: this.db.prepare('INSERT INTO series (device, point) VALUES (?, ?)'),
      upsert: Object.fromEntries(
        TIERS.map((t) => [
          t.name,
          this.db.prepare(
            `INSERT INTO ${t.name} (series, bucket, min, max, sum, n) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (series, bucket) DO UPDATE SET min = min(min, excluded.min), max = max(max, excluded.max),
             sum = sum + excluded.sum, n = n + excluded.n`,
          ),
        ]),
      ) as Record<TierName, Database.Statement>,
      range: Object.fromEntries(
        TIERS.map((t) => [
          t.name,
          this.db
            .prepare(
              `SELECT bucket, min, max, sum, n FROM ${t.name} WHERE series = ? AND bucket >= ? AND bucket <= ? ORDER BY bucket`,
            )
            .raw(),
        ]),
      ) as Record<TierName, Database.Statement>,
      prune: Object.fromEntries(
        TIERS.map((t) => [t.name, this.db.prepare(`DELETE FROM ${t.name} WHERE bucket < ?`)]),
      ) as Record<TierName, Database.Statement>,
    };
    for (const t of TIERS) this.acc.set(t.name, new Map());
    // A new store file (new epoch) is a new seq space: start the rollup over.
    const epoch = this.stmts.getMeta.get('epoch') as string | undefined;
    if (epoch !== store.epoch) {
      this.db.exec(`DELETE FROM series; ${TIERS.map((t) => `DELETE FROM ${t.name};`).join(' ')}`);
      this.stmts.setMeta.run('epoch', store.epoch);
      this.stmts.setMeta.run('folded_seq', '0');
    }
    this.folded = Number(this.stmts.getMeta.get('folded_seq') ?? 0);
    this.backfillUpTo = store.lastSeq();
    this.off = events.on('readings', (rs) => {
      for (const r of rs) {
        if (r.seq <= this.backfillUpTo) continue;
        this.add(r);
        if (r.seq > this.maxLive) this.maxLive = r.seq;
      }
    });
    this.timer = setInterval(() => this.flushSafe(), FLUSH_MS);
    this.timer.unref();
    setImmediate(() => this.backfill());
  }

  /** Whether the readings stored before this process started are still being folded in. */
  get backfilling(): boolean {
    return this.backfillPending;
  }

  /** Readings committed while the gateway was down or before the rollup existed, in small chunks. */
  private backfill(): void {
    if (this.closed) return;
    const now = this.now();
    const start = this.folded;
    const q =
      start === 0
        ? { from: now - BACKFILL_DAYS * 86_400_000, to: Number.MAX_SAFE_INTEGER, limit: BACKFILL_CHUNK }
        : { afterSeq: start, limit: BACKFILL_CHUNK };
    let last = start;
    let count = 0;
    try {
      for (const r of this.store.iterate(q)) {
        if (r.seq > this.backfillUpTo) break;
        this.add(r);
        last = r.seq;
        count++;
      }
    } catch (err) {
      this.opts.onError?.(`history backfill failed: ${describeError(err)}`);
      this.backfillPending = false;
      return;
    }
    this.folded = Math.max(this.folded, last);
    if (count < BACKFILL_CHUNK || last >= this.backfillUpTo) {
      this.backfillPending = false;
      this.folded = Math.max(this.folded, this.backfillUpTo, this.maxLive);
      return;
    }
    setImmediate(() => this.backfill());
  }

  private add(r: StoredReading): void {
    if (r.quality !== 'good' || typeof r.value !== 'number' || !Number.isFinite(r.value) || r.ts < MIN_PLAUSIBLE_TS) {
      if (r.seq > this.folded && !this.backfillPending) this.folded = r.seq;
      return;
    }
    const key = `${r.device}\u0000${r.point}`;
    for (const t of TIERS) {
      const m = this.acc.get(t.name)!;
      let s = m.get(key);
      if (!s) {
        s = new Map();
        m.set(key, s);
      }
      const b = Math.floor(r.ts / t.res) * t.res;
      s.set(b, fold(s.get(b), r.value));
    }
    if (!this.backfillPending && r.seq > this.folded) this.folded = r.seq;
  }

  private seriesId(key: string, create: boolean): number | undefined {
    let id = this.seriesIds.get(key);
    if (id !== undefined) return id;
    const [device, point] = key.split('\u0000') as [string, string];
    id = this.stmts.findSeries.get(device, point) as number | undefined;
    if (id === undefined && create) id = Number(this.stmts.addSeries.run(device, point).lastInsertRowid);
    if (id !== undefined) this.seriesIds.set(key, id);
    return id;
  }

  /** Writes the accumulated buckets (merging into rows already there) and prunes old ones. */
  flush(): void {
    if (this.closed) return;
    const now = this.now();
    this.db.transaction(() => {
      for (const t of TIERS) {
        const m = this.acc.get(t.name)!;
        for (const [key, buckets] of m) {
          const id = this.seriesId(key, true)!;
          for (const [b, a] of buckets) this.stmts.upsert[t.name].run(id, b, a.min, a.max, a.sum, a.n);
        }
        m.clear();
        const keep = t.keepMs || this.opts.maxAgeMs;
        this.stmts.prune[t.name].run(now - keep - t.res);
      }
      this.stmts.setMeta.run('folded_seq', String(this.folded));
    })();
  }

  private flushSafe(): void {
    try {
      this.flush();
    } catch (err) {
      this.opts.onError?.(`history rollup write failed: ${describeError(err)}`);
    }
  }

  query(q: HistoryQuery): HistorySeries {
    const range = q.to - q.from;
    const base = { device: q.device, point: q.point, from: q.from, to: q.to };
    if (range <= RAW_MAX_RANGE_MS) {
      const step = stepFor(q.from, q.to, q.maxPoints, 1000);
      const samples: [number, Agg][] = [];
      for (const r of this.store.iterate({ device: q.device, point: q.point, from: q.from, to: q.to })) {
        if (r.quality === 'good' && typeof r.value === 'number')
          samples.push([r.ts, { min: r.value, max: r.value, sum: r.value, n: 1 }]);
      }
      samples.sort((a, b) => a[0] - b[0]);
      return { ...base, source: 'raw', ...downsample(samples, step) };
    }
    const tier = range <= TIERS[0].keepMs ? TIERS[0] : TIERS[1];
    const step = stepFor(q.from, q.to, q.maxPoints, tier.res);
    const key = `${q.device}\u0000${q.point}`;
    const samples: [number, Agg][] = [];
    const id = this.seriesId(key, false);
    if (id !== undefined) {
      for (const [b, min, max, sum, n] of this.stmts.range[tier.name].all(id, q.from - tier.res, q.to) as number[][]) {
        samples.push([b!, { min: min!, max: max!, sum: sum!, n: n! }]);
      }
    }
    const pending = this.acc.get(tier.name)!.get(key);
    if (pending) for (const [b, a] of pending) if (b >= q.from - tier.res && b <= q.to) samples.push([b, a]);
    return { ...base, source: tier.name, ...downsample(samples, step) };
  }

  close(): void {
    if (this.closed) return;
    this.off?.();
    if (this.timer) clearInterval(this.timer);
    this.flushSafe();
    this.closed = true;
    this.db.close();
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }
}
