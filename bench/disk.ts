import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Reading } from '../gateway/core/reading.js';
import { STORE_FILE, Store } from '../gateway/store/index.js';
import { type BenchContext, type BenchResult, PER_READING_TABLE, round, sleep, writeBytes } from './common.js';
import { realisticSites } from './dataset.js';

/**
 * The raw row: a reading's fields as fixed-width binary, nothing shared, nothing compressed —
 * seq 8 + series id 4 + ts 8 + mono 8 + value 8 + quality 1 + flags 1 + boot id 2 = 40 bytes.
 * It is the size of the information, independent of how the store lays it out, so a better
 * layout shows up as a better ratio.
 */
export const RAW_ROW_BYTES = 8 + 4 + 8 + 8 + 8 + 1 + 1 + 2;
const RATE = 100;
const TICK_MS = 100;

/** Bytes written net of writes cancelled before they reached the disk (a truncated WAL). */
function netWritten(): number {
  return writeBytes() - cancelledBytes();
}
function cancelledBytes(): number {
  const m = /^cancelled_write_bytes:\s*(\d+)/m.exec(readFileSync('/proc/self/io', 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** 100 readings a second from the series of the greenhouse and the cabinet, round robin. */
function readingSource(): (t: number, n: number) => Reading[] {
  const series: { device: ReturnType<typeof realisticSites>[number]['devices'][number]; index: number }[] = [];
  for (const site of realisticSites().slice(0, 2))
    for (const d of site.devices)
      for (let index = 0; index < d.points.length; index++) series.push({ device: d, index });
  let k = 0;
  const start = Date.now();
  return (t, n) => {
    const out: Reading[] = [];
    for (let i = 0; i < n; i++, k++) {
      const s = series[k % series.length]!;
      const value = s.device.values(t)[s.index] ?? null;
      const p = s.device.points[s.index]!;
      const r: Reading = {
        device: s.device.id,
        point: p.name,
        value,
        quality: 'good',
        ts: t,
        mono: t - start,
        bootId: 'bench-boot',
        synced: true,
      };
      if (p.unit) r.unit = p.unit;
      out.push(r);
    }
    return out;
  };
}

/** Feeds `RATE` readings/s in real time (the store's own timer decides its commits). */
async function feed(seconds: number, sink: (rs: Reading[]) => void): Promise<number> {
  const source = readingSource();
  const perTick = (RATE * TICK_MS) / 1000;
  const ticks = Math.round((seconds * 1000) / TICK_MS);
  const t0 = performance.now();
  let n = 0;
  for (let i = 0; i < ticks; i++) {
    const due = t0 + i * TICK_MS;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const rs = source(Date.now(), perTick);
    sink(rs);
    n += rs.length;
  }
  return n;
}

async function storeRun(
  dir: string,
  seconds: number,
  opts: { batchMaxReadings?: number; batchMaxDelayMs?: number } = {},
) {
  const store = Store.open({ dataDir: dir, ...opts });
  const pageSize = pageSizeOf(join(dir, STORE_FILE));
  const before = netWritten();
  const n = await feed(seconds, (rs) => store.append(rs));
  const commits = store.stats().commits;
  const wal = walCommits(join(dir, `${STORE_FILE}-wal`), pageSize);
  store.close(); // flushes and checkpoints the WAL into the database: those writes count too
  const bytes = netWritten() - before;
  const rowBytes = storedRowBytes(join(dir, STORE_FILE));
  return { readings: n, bytes, perReading: bytes / n, commits, pageSize, storedRowBytes: rowBytes, wal };
}

/** The same schema and pragmas, one autocommit INSERT per reading (what not batching costs). */
async function autocommitRun(dir: string, seconds: number) {
  Store.open({ dataDir: dir }).close();
  const db = new Database(join(dir, STORE_FILE));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(PER_READING_TABLE);
  db.exec("INSERT INTO series (device, point, unit) VALUES ('d', 'p', '')");
  const insert = db.prepare(
    'INSERT INTO readings (seq, series, ts, mono, value, quality, flags, boot) VALUES (?, 1, ?, ?, ?, 0, 0, 1)',
  );
  let seq = 1;
  const before = netWritten();
  const n = await feed(seconds, (rs) => {
    for (const r of rs) insert.run(seq++, r.ts, r.mono, typeof r.value === 'number' ? r.value : null);
  });
  db.close();
  const bytes = netWritten() - before;
  return { readings: n, bytes, perReading: bytes / n };
}

/**
 * The pages the commits since the last checkpoint wrote, read from the WAL's frame headers (a frame
 * belongs to the current WAL while its salts match the header's): frames per commit, how many of
 * those commits rewrote page 1, and the page numbers of the newest few commits.
 */
function walCommits(file: string, pageSize: number) {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return null;
  }
  if (buf.length < 32) return null;
  const salt1 = buf.readUInt32BE(16);
  const salt2 = buf.readUInt32BE(20);
  const commits: number[][] = [];
  let cur: number[] = [];
  for (let off = 32; off + 24 + pageSize <= buf.length; off += 24 + pageSize) {
    if (buf.readUInt32BE(off + 8) !== salt1 || buf.readUInt32BE(off + 12) !== salt2) break;
    cur.push(buf.readUInt32BE(off));
    if (buf.readUInt32BE(off + 4) !== 0) {
      commits.push(cur);
      cur = [];
    }
  }
  if (commits.length === 0) return null;
  const frames = commits.reduce((a, c) => a + c.length, 0);
  return {
    commits: commits.length,
    framesPerCommit: round(frames / commits.length, 2),
    walBytesPerCommit: Math.round((frames * (24 + pageSize)) / commits.length),
    page1Share: round(commits.filter((c) => c.includes(1)).length / commits.length, 2),
    newest: commits.slice(-5).map((c) => c.join(',')),
  };
}

function pageSizeOf(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma('page_size', { simple: true }) as number;
  } finally {
    db.close();
  }
}

/** Average bytes a reading occupies in the batches table's pages (leaf cells and overflow), from dbstat. */
function storedRowBytes(file: string): number | null {
  const db = new Database(file, { readonly: true });
  try {
    const r = db
      .prepare(
        "SELECT (SELECT sum(n) FROM batches) AS cells, (SELECT sum(pgsize - unused) FROM dbstat WHERE name = 'batches' AND pagetype != 'internal') AS used",
      )
      .get() as { cells: number; used: number };
    return r.cells ? r.used / r.cells : null;
  } catch {
    return null; // dbstat not compiled in
  } finally {
    db.close();
  }
}

export default async function run(ctx: BenchContext): Promise<BenchResult> {
  const seconds = ctx.quick ? 3 : 60;
  const autoSeconds = ctx.quick ? 2 : 20;
  const store = await storeRun(join(ctx.scratch, 'store'), seconds);
  const auto = await autocommitRun(join(ctx.scratch, 'auto'), autoSeconds);
  const ratio = store.perReading / RAW_ROW_BYTES;
  return {
    keys: {
      disk_bytes_per_reading: round(store.perReading, 1),
      disk_ratio_vs_raw_row: round(ratio, 2),
      disk_autocommit_bytes_per_reading: round(auto.perReading, 0),
    },
    rows: [
      {
        metric: 'disk bytes per reading (100/s, store defaults)',
        ours: round(store.perReading, 1),
        unit: 'B',
        versus: `raw row (${RAW_ROW_BYTES} B)`,
        theirs: RAW_ROW_BYTES,
        ratio: round(ratio, 2),
        target: '≤ 2.5×',
        met: ratio <= 2.5,
      },
      {
        metric: 'disk bytes per reading, one autocommit INSERT each',
        ours: round(auto.perReading, 0),
        unit: 'B',
        versus: `raw row (${RAW_ROW_BYTES} B)`,
        theirs: RAW_ROW_BYTES,
        ratio: round(auto.perReading / RAW_ROW_BYTES, 1),
        target: '(comparison)',
        met: null,
      },
    ],
    details: {
      rawRowBytes: RAW_ROW_BYTES,
      ratePerS: RATE,
      store: {
        seconds,
        ...store,
        storedRowBytes: store.storedRowBytes === null ? null : round(store.storedRowBytes, 1),
      },
      autocommit: { seconds: autoSeconds, ...auto },
      autocommitVsStore: round(auto.perReading / store.perReading, 1),
    },
  };
}
