import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Reading } from '../gateway/core/reading.js';
import { HISTORY_FILE } from '../gateway/history/index.js';
import { STORE_FILE, Store } from '../gateway/store/index.js';
import {
  assertRealDisk,
  type BenchContext,
  type BenchResult,
  PER_READING_TABLE,
  round,
  sleep,
  writeBytes,
} from './common.js';
import { realisticSites } from './dataset.js';
import type { BenchBus } from './procs.js';
import { startShipped } from './shipped.js';

/**
 * The raw row: a reading's fields as fixed-width binary, nothing shared, nothing compressed —
 * seq 8 + series id 4 + ts 8 + mono 8 + value 8 + quality 1 + flags 1 + boot id 2 = 40 bytes.
 * It is the size of the information, independent of how the store lays it out, so a better
 * layout shows up as a better ratio.
 */
export const RAW_ROW_BYTES = 8 + 4 + 8 + 8 + 8 + 1 + 1 + 2;
const RATE = 100;
const TICK_MS = 100;

/** Bytes a process has written net of writes cancelled before they reached the disk (a truncated WAL). */
function netWritten(pid: number | 'self' = 'self'): number {
  return writeBytes(pid) - cancelledBytes(pid);
}
function cancelledBytes(pid: number | 'self'): number {
  const m = /^cancelled_write_bytes:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Readings the gateway's store holds (a read-only connection of another process: the gateway's I/O is its own). */
function storedReadings(dataDir: string): number {
  const db = new Database(join(dataDir, STORE_FILE), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT coalesce(sum(n), 0) AS n FROM batches').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/**
 * Checkpoints the WAL of every SQLite file the gateway keeps, from this process, and returns the
 * bytes this process wrote doing it. Called at the start of the window (so the window starts with
 * nothing left to checkpoint) and at its end (so the window's frames are copied into the database
 * once, as the gateway's own checkpoints would, and counted): without it a window between two of
 * the gateway's checkpoints would leave their cost out.
 */
function checkpointAll(dataDir: string): { bytes: number; complete: boolean } {
  const before = netWritten();
  let complete = true;
  for (const file of [STORE_FILE, HISTORY_FILE]) {
    const db = new Database(join(dataDir, file), { fileMustExist: true });
    try {
      db.pragma('busy_timeout = 5000');
      const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      const done = r !== undefined && r.busy === 0 && r.checkpointed >= r.log;
      if (!done) complete = false;
    } finally {
      db.close();
    }
  }
  return { bytes: netWritten() - before, complete };
}

/** Every file under a directory with its size, for the details (what the gateway keeps). */
function filesOf(dir: string, prefix = ''): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) Object.assign(out, filesOf(path, `${prefix}${e.name}/`));
    else if (e.isFile()) out[`${prefix}${e.name}`] = statSync(path).size;
  }
  return out;
}

/**
 * The gateway as shipped (bench/shipped.ts: HTTP on, sync on with a receiver acknowledging,
 * Node-RED off) polling simulated devices at a given rate: bytes the gateway process wrote
 * (write_bytes − cancelled_write_bytes of /proc/PID/io: the store and its WAL, history.db, the
 * sync cursors, events — every file it writes) over a window after a warm-up, plus the checkpoint
 * of the window's WAL frames (checkpointAll), per reading stored in that window.
 */
async function gatewayRun(dir: string, buses: BenchBus[], warmupS: number, windowS: number) {
  const gw = await startShipped(dir, buses);
  try {
    await sleep(warmupS * 1000);
    checkpointAll(gw.dataDir);
    const b0 = netWritten(gw.pid);
    const n0 = storedReadings(gw.dataDir);
    const t0 = performance.now();
    await sleep(windowS * 1000);
    const written = netWritten(gw.pid) - b0;
    const readings = storedReadings(gw.dataDir) - n0;
    const checkpoint = checkpointAll(gw.dataDir);
    const bytes = written + checkpoint.bytes;
    const seconds = (performance.now() - t0) / 1000;
    if (gw.gateway.child.exitCode !== null) throw new Error(`the gateway exited: ${gw.gateway.output().slice(-2000)}`);
    if (readings <= 0)
      throw new Error(`the gateway stored nothing in ${windowS} s: ${gw.gateway.output().slice(-2000)}`);
    return {
      seconds: round(seconds, 1),
      readings,
      readingsPerS: round(readings / seconds, 2),
      bytes,
      checkpointBytes: checkpoint.bytes,
      checkpointComplete: checkpoint.complete,
      perReading: bytes / readings,
      mbPerDay: ((bytes / seconds) * 86_400) / 1e6,
      files: filesOf(gw.dataDir),
    };
  } finally {
    await gw.stop();
  }
}

/** 100 readings a second: 5 three-phase meters (36 points) every 1.8 s behind a Modbus TCP gateway. */
const BUSY: BenchBus[] = [
  {
    id: 'meters',
    tcpPort: 0,
    devices: Array.from({ length: 5 }, (_, i) => ({
      id: `meter-${i + 1}`,
      profile: 'eastron-sdm630',
      unit: i + 1,
      interval: '1800ms',
    })),
  },
];
/** A greenhouse at 2 readings a second: 2 soil probes (7 points) every 7 s. */
const GREENHOUSE: BenchBus[] = [
  {
    id: 'soil',
    tcpPort: 0,
    devices: [1, 2].map((unit) => ({ id: `soil-${unit}`, profile: 'comwintop-cwt-soil', unit, interval: '7s' })),
  },
];

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
  assertRealDisk(ctx.scratch);
  const seconds = ctx.quick ? 3 : 60;
  const autoSeconds = ctx.quick ? 2 : 20;
  const warmupS = ctx.quick ? 2 : 20;
  const busyS = ctx.quick ? 5 : 180;
  const greenhouseS = ctx.quick ? 8 : 300; // ≥ one 7 s poll
  const busy = await gatewayRun(join(ctx.scratch, 'busy'), BUSY, warmupS, busyS);
  const greenhouse = await gatewayRun(join(ctx.scratch, 'greenhouse'), GREENHOUSE, warmupS, greenhouseS);
  const store = await storeRun(join(ctx.scratch, 'store'), seconds);
  const auto = await autocommitRun(join(ctx.scratch, 'auto'), autoSeconds);
  const ratio = busy.perReading / RAW_ROW_BYTES;
  return {
    keys: {
      disk_bytes_per_reading: round(busy.perReading, 1),
      disk_ratio_vs_raw_row: round(ratio, 2),
      disk_mb_per_day_greenhouse: round(greenhouse.mbPerDay, 1),
      disk_store_bytes_per_reading: round(store.perReading, 1),
      disk_autocommit_bytes_per_reading: round(auto.perReading, 0),
    },
    rows: [
      {
        metric: `disk bytes per reading, gateway as shipped, every file it writes (${busy.readingsPerS}/s, ${busy.seconds} s)`,
        ours: round(busy.perReading, 1),
        unit: 'B',
        versus: `raw row (${RAW_ROW_BYTES} B)`,
        theirs: RAW_ROW_BYTES,
        ratio: round(ratio, 2),
        target: '≤ 2.5×',
        met: ratio <= 2.5,
      },
      {
        metric: `disk MB per day, gateway as shipped, greenhouse (${greenhouse.readingsPerS}/s, ${greenhouse.seconds} s)`,
        ours: round(greenhouse.mbPerDay, 1),
        unit: 'MB/day',
        versus: 'bytes per reading',
        theirs: round(greenhouse.perReading, 0),
        ratio: null,
        target: 'reported',
        met: null,
      },
      {
        metric: 'disk bytes per reading, the store alone (100/s, store defaults)',
        ours: round(store.perReading, 1),
        unit: 'B',
        versus: `raw row (${RAW_ROW_BYTES} B)`,
        theirs: RAW_ROW_BYTES,
        ratio: round(store.perReading / RAW_ROW_BYTES, 2),
        target: '(the store part)',
        met: null,
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
      gateway: {
        warmupS,
        busy: { ...busy, perReading: round(busy.perReading, 1), mbPerDay: round(busy.mbPerDay, 1) },
        greenhouse: {
          ...greenhouse,
          perReading: round(greenhouse.perReading, 1),
          mbPerDay: round(greenhouse.mbPerDay, 1),
        },
      },
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
