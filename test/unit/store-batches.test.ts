import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Reading } from '../../gateway/core/reading.js';
import { decodeBatch, encodeRows, type RawRow } from '../../gateway/store/batch-codec.js';
import { MIGRATIONS, SCHEMA_VERSION, STORE_FILE, Store, SYNC_CURSOR } from '../../gateway/store/index.js';
import { APPLICATION_ID } from '../../gateway/store/schema.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-batches-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const T0 = Date.UTC(2026, 10, 26, 14, 43, 45, 123);

describe('batch codec', () => {
  it('gives back exactly the rows it was given, whatever the values and clocks', () => {
    const values: (number | string | null)[] = [
      0,
      -0,
      1,
      -1,
      63,
      64,
      1000,
      -123456,
      2 ** 40,
      2 ** 52,
      -(2 ** 52),
      2 ** 53 + 2,
      Number.MAX_SAFE_INTEGER,
      23.4,
      -7.25,
      0.001,
      12.3456,
      0.1 + 0.2,
      1e-7,
      1 / 3,
      1e300,
      -2.5e-300,
      Number.MIN_VALUE,
      22.400000000000002,
      null,
      '',
      '0012',
      'Đà Lạt ☀',
      'x'.repeat(300),
    ];
    const rows: RawRow[] = values.map((v, i) => ({
      seq: 1000 + i,
      series: 1 + (i % 70) * 3,
      // same ts within a poll, steps between, a wall clock that jumps back, and absurd instants
      ts: i === 7 ? -8.64e15 : i === 8 ? 8.64e15 : T0 + Math.floor(i / 4) * 1000 - (i === 20 ? 3_600_000 : 0),
      mono: i === 9 ? 2 ** 60 : 5_000 + i * 250,
      value: v,
      quality: i % 8,
      flags: i % 5 === 0 ? 1 : 0,
      boot: i < 10 ? 1 : 2 + (i % 3),
    }));
    const data = encodeRows(rows);
    const out: RawRow[] = [];
    expect(decodeBatch(1000, data, out)).toBe(rows.length);
    const expected = rows.map((r) => {
      const c = { ...r };
      if (Object.is(c.value, -0)) c.value = 0; // stored as 0, as SQLite's REAL affinity did
      return c;
    });
    expect(out).toEqual(expected);
    for (let i = 0; i < rows.length; i++) expect(Object.is(out[i]!.value, expected[i]!.value)).toBe(true);

    // Clipping to a seq range.
    const part: RawRow[] = [];
    decodeBatch(1000, data, part, 1003, 1005);
    expect(part.map((r) => r.seq)).toEqual([1003, 1004, 1005]);
  });

  it('packs a poll of decimal readings into a few bytes each', () => {
    const rows: RawRow[] = Array.from({ length: 100 }, (_, i) => ({
      seq: 1 + i,
      series: 1 + (i % 20),
      ts: T0 + Math.floor(i / 20) * 1000,
      mono: 9_000 + Math.floor(i / 20) * 1000,
      value: Math.round((20 + Math.sin(i) * 5) * 10) / 10,
      quality: 0,
      flags: 0,
      boot: 1,
    }));
    // tag, series, ts delta, mono skew, value: 5–6 bytes for a value with one decimal.
    expect(encodeRows(rows).length).toBeLessThanOrEqual(100 * 6 + 16);
  });
});

describe('store: one row per commit', () => {
  it('a commit of 100 readings appends a handful of WAL frames (page 1, one leaf, its overflow pages)', () => {
    const s = Store.open({ dataDir: dir, batchMaxDelayMs: 60_000 });
    const reading = (i: number): Reading => ({
      device: `dev-${i % 7}`,
      point: `p${i % 10}`,
      value: Math.round(i * 37.3) / 10,
      quality: 'good',
      ts: T0 + Math.floor(i / 10) * 100,
      mono: 1000 + Math.floor(i / 10) * 100,
      bootId: 'boot',
      synced: true,
    });
    let i = 0;
    for (let c = 0; c < 30; c++) {
      s.append(Array.from({ length: 100 }, () => reading(i++)));
      s.flush();
    }
    const frames = walFramesPerCommit(join(dir, `${STORE_FILE}-wal`), 512);
    s.close();
    // The last 20 commits (the first ones also create the series and boot rows).
    const tail = frames.slice(-20);
    expect(tail.length).toBe(20);
    const mean = tail.reduce((a, n) => a + n, 0) / tail.length;
    // One row per reading used to take 6–7 frames of 1 KiB per commit like this one.
    expect(mean).toBeLessThanOrEqual(5);
  });

  it('splits a very large commit into rows of at most 1000 readings, all readable', () => {
    const s = Store.open({ dataDir: dir, batchMaxReadings: 10_000, batchMaxDelayMs: 60_000 });
    s.append(
      Array.from({ length: 2500 }, (_, i) => ({
        device: 'd',
        point: 'p',
        value: i,
        quality: 'good' as const,
        ts: T0 + i,
        mono: i,
        bootId: 'b',
        synced: true,
      })),
    );
    expect(s.flush()).toBe(2500);
    expect(s.readAfter(0, 5000).map((r) => r.value)).toEqual(Array.from({ length: 2500 }, (_, i) => i));
    expect(s.readAfter(999, 3).map((r) => r.seq)).toEqual([1000, 1001, 1002]);
    s.close();
    const db = new Database(join(dir, STORE_FILE), { readonly: true });
    expect(db.prepare('SELECT seq, n FROM batches ORDER BY seq').all()).toEqual([
      { seq: 1, n: 1000 },
      { seq: 1001, n: 1000 },
      { seq: 2001, n: 500 },
    ]);
    db.close();
  });
});

describe('store: migration from schema v2 (one row per reading)', () => {
  it('an existing store opens with its readings, seqs, epoch, cursors and gaps, and goes on', () => {
    // A store exactly as the v2 release made it: its migrations, its 1 KiB pages.
    const file = join(dir, STORE_FILE);
    mkdirSync(dir, { recursive: true });
    const db = new Database(file);
    db.pragma('page_size = 1024');
    db.pragma('journal_mode = WAL');
    db.transaction(() => {
      MIGRATIONS[0]!(db);
      MIGRATIONS[1]!(db);
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', '2')").run();
      db.pragma('user_version = 2');
    })();
    const epoch = db.prepare("SELECT value FROM meta WHERE key = 'epoch'").pluck().get() as string;
    db.exec(`
      INSERT INTO series (id, device, point, unit) VALUES (1, 'soil-1', 'moisture', '%'), (2, 'meter', 'serial', '');
      INSERT INTO boots (id, boot_id, first_seq) VALUES (1, 'boot-a', 1), (2, 'boot-b', 1200);
      INSERT INTO cursors (name, seq) VALUES ('sync', 1100), ('sync-events', 0);
      UPDATE meta SET value = '10' WHERE key = 'seq_floor';
      INSERT INTO gaps (first_seq, last_seq, count, reason, ts) VALUES (1, 10, 10, 'byte_cap', ${T0});
      INSERT INTO events (kind, ts, data) VALUES ('gap', ${T0}, json_object('gapId', 1, 'firstSeq', 1, 'lastSeq', 10, 'count', 10, 'reason', 'byte_cap'));
    `);
    const insert = db.prepare(
      'INSERT INTO readings (seq, series, ts, mono, value, quality, flags, boot) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const expected: { seq: number; value: number | string | null; ts: number; synced: boolean; bootId: string }[] = [];
    db.transaction(() => {
      // seqs 11..1300 with a hole 700..749 (an ingest_overflow gap), strings stored as BLOBs, nulls
      for (let seq = 11; seq <= 1300; seq++) {
        if (seq >= 700 && seq < 750) continue;
        const str = seq % 97 === 0;
        const value = str ? `00${seq}` : seq % 50 === 0 ? null : seq % 3 === 0 ? seq : seq / 10;
        const boot = seq >= 1200 ? 2 : 1;
        const unsynced = seq > 1250;
        insert.run(
          seq,
          str ? 2 : 1,
          T0 + seq * 1000,
          seq * 1000,
          str ? Buffer.from(String(value)) : value,
          0,
          unsynced ? 1 : 0,
          boot,
        );
        expected.push({ seq, value, ts: T0 + seq * 1000, synced: !unsynced, bootId: boot === 2 ? 'boot-b' : 'boot-a' });
      }
      db.prepare(
        "INSERT INTO gaps (first_seq, last_seq, count, reason, ts) VALUES (700, 749, 50, 'ingest_overflow', ?)",
      ).run(T0);
      db.prepare('INSERT INTO ts_blocks (block, min_ts, max_ts) VALUES (0, ?, ?)').run(T0 + 11_000, T0 + 1023_000);
    })();
    db.close();

    const s = Store.open({ dataDir: dir, batchMaxDelayMs: 60_000 });
    try {
      expect(s.epoch).toBe(epoch);
      expect(s.lastSeq()).toBe(1300);
      expect(s.getCursor(SYNC_CURSOR)).toBe(1100);
      expect(s.stats()).toMatchObject({ readings: 1300 - 10 - 50, firstSeq: 11, lastSeq: 1300, gaps: 2 });
      const got = s.readAfter(0, 10_000);
      expect(got.map((r) => ({ seq: r.seq, value: r.value, ts: r.ts, synced: r.synced, bootId: r.bootId }))).toEqual(
        expected,
      );
      expect(got.find((r) => r.seq === 97)).toMatchObject({ device: 'meter', point: 'serial', value: '0097' });
      expect(got.find((r) => r.seq === 11)).toMatchObject({ device: 'soil-1', point: 'moisture', unit: '%' });
      // Time ranges still go through ts_blocks.
      expect(s.query({ from: T0 + 500_000, to: T0 + 502_000 }).map((r) => r.seq)).toEqual([500, 501, 502]);
      expect(s.gapsAfter(0).map((g) => g.reason)).toEqual(['byte_cap', 'ingest_overflow']);
      // A correction of the unsynced readings of boot-b still finds them.
      expect(s.correctUnsyncedTimestamps('boot-b', 5)).toBe(50);
      expect(s.readAfter(1299, 1)[0]).toMatchObject({ ts: T0 + 1_300_000 + 5, synced: true });
      // New readings continue the seq space.
      s.append([
        {
          device: 'soil-1',
          point: 'moisture',
          unit: '%',
          value: 1.5,
          quality: 'good',
          ts: T0,
          mono: 0,
          bootId: 'boot-c',
          synced: true,
        },
      ]);
      s.flush();
      expect(s.readAfter(1300, 5).map((r) => r.seq)).toEqual([1301]);
    } finally {
      s.close();
    }
    const after = new Database(file, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(after.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'readings'").pluck().get()).toBe(0);
    // A hole in the seqs starts a new row: rows never span a gap.
    expect(after.prepare('SELECT seq, n FROM batches WHERE seq <= 760 ORDER BY seq').all()).toEqual([
      { seq: 11, n: 500 },
      { seq: 511, n: 189 },
      { seq: 750, n: 500 },
    ]);
    after.close();
  });
});

/** Frames of each commit in the WAL (frames whose salts match the WAL header). */
function walFramesPerCommit(file: string, pageSize: number): number[] {
  const buf = readFileSync(file);
  const salt1 = buf.readUInt32BE(16);
  const salt2 = buf.readUInt32BE(20);
  const out: number[] = [];
  let n = 0;
  for (let off = 32; off + 24 + pageSize <= buf.length; off += 24 + pageSize) {
    if (buf.readUInt32BE(off + 8) !== salt1 || buf.readUInt32BE(off + 12) !== salt2) break;
    n++;
    if (buf.readUInt32BE(off + 4) !== 0) {
      out.push(n);
      n = 0;
    }
  }
  return out;
}
