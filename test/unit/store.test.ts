import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../gateway/clock/index.js';
import { EventBus } from '../../gateway/core/events.js';
import type { GapEvent, Reading, StoredReading } from '../../gateway/core/reading.js';
import { writeExport } from '../../gateway/export/index.js';
import {
  CONFIRMED_CURSOR,
  EVENTS_CONFIRMED_CURSOR,
  EVENTS_CURSOR,
  SCHEMA_VERSION,
  STORE_FILE,
  Store,
  type StoreOptions,
  SYNC_CURSOR,
} from '../../gateway/store/index.js';

const T0 = Date.UTC(2026, 10, 26, 14, 43, 45, 123);
let dir: string;
const open: Store[] = [];

function openStore(o: Partial<StoreOptions> = {}): Store {
  const s = Store.open({ dataDir: dir, batchMaxDelayMs: 60_000, ...o });
  open.push(s);
  return s;
}

function reading(i: number, o: Partial<Reading> = {}): Reading {
  return {
    device: `dev-${i % 3}`,
    point: i % 2 ? 'temperature' : 'moisture',
    value: i / 10,
    quality: 'good',
    ts: T0 + i * 1000,
    mono: 5_000 + i * 1000,
    bootId: 'boot-a',
    synced: true,
    unit: i % 2 ? '°C' : '%',
    ...o,
  };
}

function readings(from: number, n: number, o: Partial<Reading> = {}): Reading[] {
  return Array.from({ length: n }, (_, k) => reading(from + k, o));
}

function seqsOf(rs: StoredReading[]): number[] {
  return rs.map((r) => r.seq);
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, k) => a + k);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-store-'));
});

afterEach(() => {
  for (const s of open.splice(0)) {
    try {
      s.close();
    } catch {
      // a test may have closed it already
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('store: seqs and batching', () => {
  it('gives contiguous, monotonic seqs that continue after reopen and are never reused after deletion', () => {
    let s = openStore();
    s.append(readings(0, 10));
    expect(s.flush()).toBe(10);
    s.append(readings(10, 5));
    s.close();
    s = openStore();
    expect(s.lastSeq()).toBe(15);
    expect(seqsOf(s.readAfter(0, 100))).toEqual(range(1, 15));
    s.append(readings(15, 3));
    s.flush();
    expect(seqsOf(s.readAfter(0, 100))).toEqual(range(1, 18));

    // Drop everything by age: the table is empty, yet the next seq is 19, not 1.
    const clock = new ManualClock({ wall: T0 + 10 * 86_400_000 });
    s.close();
    s = openStore({ clock, maxAgeMs: 86_400_000 });
    s.enforceRetention();
    expect(s.readAfter(0, 100)).toEqual([]);
    s.close();
    s = openStore({ clock });
    s.append(readings(100, 2, { ts: clock.wallNow() }));
    s.flush();
    expect(seqsOf(s.readAfter(0, 100))).toEqual([19, 20]);
  });

  it('commits per batch, not per reading', () => {
    const s = openStore({ batchMaxReadings: 100 });
    for (let i = 0; i < 1000; i++) s.append([reading(i)]);
    // 1000 appends of one reading each, 100 per batch: exactly 10 commits, nothing left buffered.
    expect(s.stats().commits).toBe(10);
    expect(s.stats().buffered).toBe(0);
    expect(s.lastSeq()).toBe(1000);
    s.append(readings(1000, 7));
    expect(s.stats().buffered).toBe(7);
    expect(s.lastSeq()).toBe(1000);
    expect(s.flush()).toBe(7);
    expect(s.stats().commits).toBe(11);
  });

  it('commits buffered readings after batchMaxDelayMs without a flush', async () => {
    const s = openStore({ batchMaxDelayMs: 30 });
    s.append(readings(0, 3));
    s.append(readings(3, 2));
    expect(s.readAfter(0, 10)).toEqual([]);
    await waitFor(() => s.stats().buffered === 0);
    expect(s.stats().commits).toBe(1);
    expect(seqsOf(s.readAfter(0, 10))).toEqual(range(1, 5));
  });

  it('close() commits what is buffered', () => {
    const s = openStore();
    s.append(readings(0, 4));
    s.close();
    const again = openStore({ readonly: true });
    expect(again.lastSeq()).toBe(4);
  });

  it('round-trips values, qualities, units, boot ids and the synced flag', () => {
    const s = openStore();
    s.append([
      reading(1, { value: 23.45, unit: '°C' }),
      reading(2, { value: 'FW 1.2,"beta"', unit: undefined, point: 'firmware' }),
      reading(3, { value: null, quality: 'timeout', bootId: 'boot-b', synced: false }),
      reading(4, { value: 12, point: 'count', unit: undefined }),
      reading(5, { value: Number.NaN }),
    ]);
    s.flush();
    const [a, b, c, d, e] = s.readAfter(0, 10);
    expect(a).toMatchObject({
      seq: 1,
      value: 23.45,
      unit: '°C',
      quality: 'good',
      bootId: 'boot-a',
      synced: true,
      ts: T0 + 1000,
      mono: 6000,
    });
    expect(b).toMatchObject({ seq: 2, value: 'FW 1.2,"beta"', point: 'firmware' });
    expect(b!.unit).toBeUndefined();
    expect(c).toMatchObject({ seq: 3, value: null, quality: 'timeout', bootId: 'boot-b', synced: false });
    expect(d).toMatchObject({ value: 12 });
    // A non-finite number cannot be stored as a value: kept as a reading with no value, flagged.
    expect(e).toMatchObject({ value: null, quality: 'decode_error' });
  });

  it('a string point that looks like a number stays a string', () => {
    const s = openStore();
    s.append([reading(1, { value: '0012', point: 'serial' })]);
    s.flush();
    expect(s.readAfter(0, 1)[0]!.value).toBe('0012');
  });

  it('refuses bad readings with a typed error and keeps the good buffer intact', () => {
    const s = openStore();
    s.append(readings(0, 2));
    expect(() => s.append([reading(9, { ts: Number.NaN })])).toThrow(expect.objectContaining({ code: 'STORE_FAILED' }));
    expect(() => s.append([reading(9, { quality: 'weird' as never })])).toThrow(/unknown quality/);
    expect(() => s.append([reading(9, { device: '' })])).toThrow(/device/);
    expect(s.flush()).toBe(2);
  });

  it('refuses bad options with a typed error', () => {
    expect(() => Store.open({ dataDir: dir, maxBytes: -1 })).toThrow(expect.objectContaining({ code: 'STORE_FAILED' }));
    expect(() => Store.open({ dataDir: dir, synchronous: 'off' as never })).toThrow(/synchronous/);
  });

  it('emits committed readings on the event bus', () => {
    const events = new EventBus();
    const got: StoredReading[][] = [];
    events.on('readings', (rs) => got.push(rs));
    const s = openStore({ events });
    s.append(readings(0, 3));
    s.flush();
    expect(got).toHaveLength(1);
    expect(seqsOf(got[0]!)).toEqual([1, 2, 3]);
  });
});

describe('store: epoch, cursors and migrations', () => {
  it('keeps its epoch across reopen; a new database gets a new one', () => {
    const s = openStore();
    const epoch = s.epoch;
    expect(epoch).toMatch(/^[0-9a-f]{32}$/);
    s.close();
    expect(openStore().epoch).toBe(epoch);
    const other = mkdtempSync(join(tmpdir(), 'lb-store-'));
    try {
      const s2 = Store.open({ dataDir: other });
      expect(s2.epoch).not.toBe(epoch);
      s2.close();
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('persists cursors with the next commit', () => {
    let s = openStore();
    s.append(readings(0, 5));
    s.flush();
    expect(s.getCursor(SYNC_CURSOR)).toBe(0);
    s.setCursor(SYNC_CURSOR, 3);
    expect(s.getCursor(SYNC_CURSOR)).toBe(3);
    s.flush();
    s.close();
    s = openStore();
    expect(s.getCursor(SYNC_CURSOR)).toBe(3);
    expect(() => s.setCursor('x', -1)).toThrow(expect.objectContaining({ code: 'STORE_FAILED' }));
  });

  it('migrates an empty database to the current schema, and reopening is a no-op', () => {
    const s = openStore();
    s.close();
    const db = new Database(join(dir, STORE_FILE));
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const tables = (
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[]
    ).filter((n) => !n.startsWith('sqlite_'));
    expect(tables).toEqual(['batches', 'boots', 'cursors', 'events', 'gaps', 'meta', 'series', 'ts_blocks']);
    const schemaBefore = db.prepare('SELECT sql FROM sqlite_master ORDER BY name').pluck().all();
    db.close();
    openStore().close();
    const db2 = new Database(join(dir, STORE_FILE));
    expect(db2.prepare('SELECT sql FROM sqlite_master ORDER BY name').pluck().all()).toEqual(schemaBefore);
    db2.close();
  });

  it('refuses a database written by a newer release it cannot read', () => {
    openStore().close();
    const db = new Database(join(dir, STORE_FILE));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    // the newer release's migration was not backward-readable (docs/operations.md, "Store versions and rollback")
    db.prepare("UPDATE meta SET value = ? WHERE key = 'read_version'").run(String(SCHEMA_VERSION + 1));
    db.close();
    expect(() => Store.open({ dataDir: dir })).toThrow(expect.objectContaining({ code: 'STORE_SCHEMA_TOO_NEW' }));
  });

  it('refuses a file that is not an SQLite database, with a typed error', () => {
    const f = join(dir, STORE_FILE);
    writeFileSync(f, 'this is not a database, just text long enough to fill the header. '.repeat(20));
    expect(() => Store.open({ dataDir: dir })).toThrow(expect.objectContaining({ code: 'STORE_FAILED' }));
  });

  it('read-only mode reads but refuses writes', () => {
    const s = openStore();
    s.append(readings(0, 3));
    s.flush();
    const ro = openStore({ readonly: true });
    expect(ro.readAfter(0, 10)).toHaveLength(3);
    expect(() => ro.append(readings(3, 1))).toThrow(/read-only/);
  });
});

describe('store: caps and gaps', () => {
  it('byte cap: the file stays bounded, the oldest go first, and one gap names exactly what was dropped', () => {
    const events = new EventBus();
    const gaps: GapEvent[] = [];
    events.on('gap', (g) => gaps.push(g));
    const maxBytes = 256 * 1024;
    const s = openStore({ maxBytes, events, batchMaxReadings: 1_000_000 });
    let next = 0;
    while (gaps.length === 0) {
      s.append(readings(next, 500));
      next += 500;
      s.flush();
      expect(next).toBeLessThan(100_000);
    }
    const st = s.stats();
    expect(st.bytes).toBeLessThanOrEqual(maxBytes);
    expect(gaps[0]).toMatchObject({ id: 1, firstSeq: 1, reason: 'byte_cap' });
    // The gaps of this pass tile seqs 1..firstSeq-1 exactly: every dropped seq is accounted for.
    let expected = 1;
    for (const g of gaps) {
      expect(g.firstSeq).toBe(expected);
      expect(g.count).toBe(g.lastSeq - g.firstSeq + 1);
      expected = g.lastSeq + 1;
    }
    expect(st.firstSeq).toBe(expected);
    // Everything after the gap is still there, contiguous, up to the newest.
    expect(st.readings).toBe(st.lastSeq - st.firstSeq + 1);
    expect(seqsOf(s.readAfter(st.firstSeq - 1, 1_000_000))).toEqual(range(st.firstSeq, st.lastSeq));
    expect(s.gapsAfter(0)).toEqual(gaps);

    // Keep writing well past the cap: the file stops growing (free pages are reused).
    for (let k = 0; k < 40; k++) {
      s.append(readings(next, 500));
      next += 500;
      s.flush();
    }
    const after = s.stats();
    expect(after.bytes).toBeLessThanOrEqual(maxBytes);
    expect(statSync(join(dir, STORE_FILE)).size).toBeLessThanOrEqual(maxBytes * 1.15);
    expect(after.lastSeq).toBe(next);
    // Gaps tile the dropped seqs without overlap, starting at 1.
    const all = s.gapsAfter(0);
    expect(all.length).toBeGreaterThan(1);
    let expectFirst = 1;
    for (const g of all) {
      expect(g.firstSeq).toBe(expectFirst);
      expectFirst = g.lastSeq + 1;
    }
    expect(after.firstSeq).toBe(expectFirst);
  });

  it('records gaps for every reading the city had not confirmed, delivered to the broker or not', () => {
    const s = openStore({ maxBytes: 128 * 1024, batchMaxReadings: 1_000_000 });
    s.append(readings(0, 500));
    s.flush();
    s.setCursor(CONFIRMED_CURSOR, 300);
    // delivered to the broker (PUBACK) up to 450, but a broker may lose what it acknowledged
    s.setCursor(SYNC_CURSOR, 450);
    s.flush();
    let next = 500;
    while (s.stats().firstSeq <= 300 || s.gapsAfter(0).length === 0) {
      s.append(readings(next, 200));
      next += 200;
      s.flush();
      expect(next).toBeLessThan(50_000);
    }
    const [g] = s.gapsAfter(0);
    // Seqs 1..300 were confirmed by the city: dropping them is retention, not a gap; 301..450
    // were only delivered to the broker, so they are in the gap.
    expect(g!.firstSeq).toBe(301);
    expect(g!.lastSeq).toBeGreaterThan(450);
  });

  it('delivered is not confirmed: a store that has never been confirmed keeps its confirmed cursor at 0', () => {
    let s = openStore();
    s.append(readings(0, 50));
    s.flush();
    s.setCursor(SYNC_CURSOR, 40);
    s.flush();
    s.close();
    s = openStore();
    expect(s.getCursor(SYNC_CURSOR)).toBe(40);
    expect(s.getCursor(CONFIRMED_CURSOR)).toBe(0);
  });

  it('a store from before end-to-end acknowledgement counts what it delivered as confirmed, once', () => {
    let s = openStore();
    s.append(readings(0, 50));
    s.flush();
    s.setCursor(SYNC_CURSOR, 40);
    s.setCursor(EVENTS_CURSOR, 7);
    s.flush();
    s.close();
    // as the previous release left it: the delivered cursors only, and no marker
    const db = new Database(join(dir, STORE_FILE));
    db.prepare('DELETE FROM cursors WHERE name IN (?, ?)').run(CONFIRMED_CURSOR, EVENTS_CONFIRMED_CURSOR);
    db.prepare("DELETE FROM meta WHERE key = 'confirmed_cursors'").run();
    db.close();
    s = openStore();
    expect(s.getCursor(CONFIRMED_CURSOR)).toBe(40);
    expect(s.getCursor(EVENTS_CONFIRMED_CURSOR)).toBe(7);
    // and a store that has its confirmed cursor keeps it, whatever was delivered since
    s.setCursor(SYNC_CURSOR, 50);
    s.flush();
    s.close();
    s = openStore();
    expect(s.getCursor(CONFIRMED_CURSOR)).toBe(40);
  });

  it('dropping only confirmed readings records no gap', () => {
    const s = openStore({ maxBytes: 128 * 1024, batchMaxReadings: 1_000_000 });
    let next = 0;
    while (s.stats().firstSeq <= 1) {
      s.append(readings(next, 200));
      next += 200;
      s.setCursor(CONFIRMED_CURSOR, next); // everything confirmed by the city as soon as written
      s.flush();
      expect(next).toBeLessThan(50_000);
    }
    expect(s.gapsAfter(0)).toEqual([]);
    expect(s.stats().firstSeq).toBeGreaterThan(1);
  });

  it('age cap drops readings older than maxAge (oldest first) and records the gap', () => {
    const clock = new ManualClock({ wall: T0 });
    const events = new EventBus();
    const gaps: GapEvent[] = [];
    events.on('gap', (g) => gaps.push(g));
    const s = openStore({ clock, maxAgeMs: 3_600_000, events });
    // 10 readings an hour apart, stamped in the past: seq 1 is 9 h old, seq 10 is now.
    s.append(Array.from({ length: 10 }, (_, k) => reading(k, { ts: T0 - (9 - k) * 3_600_000 })));
    s.flush(); // the age cap is applied after the commit
    // Seqs 1..8 are more than 1 h old; seq 9 is exactly 1 h old and is kept.
    expect(gaps).toEqual([expect.objectContaining({ firstSeq: 1, lastSeq: 8, count: 8, reason: 'age_cap', ts: T0 })]);
    expect(seqsOf(s.readAfter(0, 100))).toEqual([9, 10]);
    expect(s.enforceRetention()).toEqual([]);
    clock.advance(1);
    expect(s.enforceRetention()).toEqual([expect.objectContaining({ firstSeq: 9, lastSeq: 9, count: 1 })]);
  });

  it('age cap waits while the clock is not synchronised', () => {
    const clock = new ManualClock({ wall: T0, synced: false });
    const s = openStore({ clock, maxAgeMs: 1000 });
    s.append(readings(0, 5, { ts: T0 - 86_400_000 }));
    s.flush();
    expect(s.enforceRetention()).toEqual([]);
    expect(s.stats().readings).toBe(5);
    clock.setSynced(true);
    expect(s.enforceRetention()).toHaveLength(1);
    expect(s.stats().readings).toBe(0);
  });

  it('when commits keep failing, readings beyond the buffer bound become an ingest_overflow gap', () => {
    const errors: unknown[] = [];
    const s = openStore({ batchMaxReadings: 5, maxBufferedReadings: 12, onError: (e) => errors.push(e) });
    s.append(readings(0, 3));
    s.flush(); // seqs 1..3
    (s as unknown as { db: Database.Database }).db.pragma('busy_timeout = 0');
    const other = new Database(join(dir, STORE_FILE));
    other.prepare('BEGIN IMMEDIATE').run(); // another writer holds the lock: our commits fail
    for (let i = 0; i < 20; i++) s.append([reading(100 + i)]);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toMatchObject({ code: 'STORE_FAILED' });
    expect(s.stats().buffered).toBe(12);
    other.prepare('ROLLBACK').run();
    other.close();
    expect(s.flush()).toBe(12);
    // The 8 oldest of the 20 were dropped: seqs 4..11, named by the gap; the 12 kept are 12..23.
    expect(s.gapsAfter(0)).toEqual([
      expect.objectContaining({ firstSeq: 4, lastSeq: 11, count: 8, reason: 'ingest_overflow' }),
    ]);
    const held = s.readAfter(3, 100);
    expect(seqsOf(held)).toEqual(range(12, 23));
    expect(held[0]!.value).toBe(reading(108).value);
    expect(s.stats()).toMatchObject({ readings: 15, firstSeq: 1, lastSeq: 23 });
    s.close();
    expect(openStore().lastSeq()).toBe(23);
  });

  it('stats count what is held', () => {
    const s = openStore();
    expect(s.stats()).toMatchObject({ readings: 0, firstSeq: 0, lastSeq: 0, gaps: 0, buffered: 0 });
    s.append(readings(0, 42));
    s.flush();
    const st = s.stats();
    expect(st).toMatchObject({ readings: 42, firstSeq: 1, lastSeq: 42, gaps: 0 });
    expect(st.bytes).toBeGreaterThan(0);
    expect(st.fileBytes).toBeGreaterThanOrEqual(st.bytes);
  });
});

describe('store: time correction', () => {
  it('shifts unsynced readings of that boot by the step, committed and buffered, and marks them synced', () => {
    const s = openStore();
    const step = 123_456_789;
    s.append(readings(0, 3, { synced: false })); // seq 1-3 unsynced, boot-a
    s.append(readings(3, 2, { synced: true })); // seq 4-5 synced
    s.append(readings(5, 2, { synced: false, bootId: 'boot-old' })); // seq 6-7 other boot
    s.flush();
    s.append(readings(7, 2, { synced: false })); // still buffered
    expect(s.correctUnsyncedTimestamps('boot-a', step)).toBe(5);
    s.flush();
    const rs = s.readAfter(0, 100);
    const byseq = new Map(rs.map((r) => [r.seq, r]));
    for (const q of [1, 2, 3, 8, 9]) {
      expect(byseq.get(q)).toMatchObject({ ts: T0 + (q - 1) * 1000 + step, synced: true });
    }
    for (const q of [4, 5]) expect(byseq.get(q)).toMatchObject({ ts: T0 + (q - 1) * 1000, synced: true });
    for (const q of [6, 7]) expect(byseq.get(q)).toMatchObject({ ts: T0 + (q - 1) * 1000, synced: false });
    // A second correction finds nothing left to correct.
    expect(s.correctUnsyncedTimestamps('boot-a', step)).toBe(0);
    // Time queries see the corrected times.
    expect(seqsOf(s.query({ from: T0 + step, to: T0 + step + 2000 }))).toEqual([1, 2, 3]);
  });

  it('markSynced: false shifts but keeps the flag; rebase re-stamps from monotonic time', () => {
    const s = openStore();
    s.append(readings(0, 2, { synced: false }));
    s.flush();
    expect(s.correctUnsyncedTimestamps('boot-a', 1000, { markSynced: false })).toBe(2);
    expect(s.readAfter(0, 10)).toEqual([
      expect.objectContaining({ ts: T0 + 1000, synced: false }),
      expect.objectContaining({ ts: T0 + 2000, synced: false }),
    ]);
    expect(s.rebaseUnsyncedTimestamps('boot-a', 1_000_000)).toBe(2);
    expect(s.readAfter(0, 10)).toEqual([
      expect.objectContaining({ ts: 1_000_000 + 5000, synced: true }),
      expect.objectContaining({ ts: 1_000_000 + 6000, synced: true }),
    ]);
  });

  it('an unknown boot corrects nothing', () => {
    const s = openStore();
    s.append(readings(0, 2, { synced: false }));
    s.flush();
    expect(s.correctUnsyncedTimestamps('no-such-boot', 5000)).toBe(0);
  });
});

describe('store: queries', () => {
  function filled(n = 3000): Store {
    const s = openStore({ batchMaxReadings: 1_000_000 });
    s.append(readings(0, n));
    s.flush();
    return s;
  }

  it('filters by device, point, time range, afterSeq and limit, oldest first', () => {
    const s = filled();
    const r = s.query({ device: 'dev-1', point: 'temperature' });
    // dev-1 is i % 3 == 1, temperature is odd i: i ≡ 1 (mod 6) → seq = i + 1 ≡ 2 (mod 6)
    expect(r.length).toBe(500);
    expect(r.every((x) => x.device === 'dev-1' && x.point === 'temperature' && x.seq % 6 === 2)).toBe(true);
    expect(seqsOf(r)).toEqual([...seqsOf(r)].sort((a, b) => a - b));

    const t = s.query({ from: T0 + 1500 * 1000, to: T0 + 1504 * 1000 });
    expect(seqsOf(t)).toEqual([1501, 1502, 1503, 1504, 1505]);
    expect(seqsOf(s.query({ afterSeq: 2990 }))).toEqual(range(2991, 3000));
    expect(seqsOf(s.query({ afterSeq: 100, limit: 3 }))).toEqual([101, 102, 103]);
    expect(seqsOf(s.query({ device: 'dev-0', from: T0 + 2000 * 1000, limit: 2 }))).toEqual([2002, 2005]);
    expect(seqsOf(s.query({ order: 'desc', limit: 2 }))).toEqual([3000, 2999]);
    expect(s.query({ device: 'nope' })).toEqual([]);
    expect(s.query({ from: T0 + 10_000_000 })).toEqual([]);
  });

  it('finds readings in time however they are ordered by seq', () => {
    const s = openStore({ batchMaxReadings: 1_000_000 });
    // 2500 readings (three ts blocks), then one stamped far in the past (a clock that went back).
    s.append(readings(0, 2500));
    s.append([reading(0, { ts: T0 - 86_400_000 })]);
    s.append(readings(2500, 10));
    s.flush();
    expect(seqsOf(s.query({ to: T0 - 1 }))).toEqual([2501]);
    expect(seqsOf(s.query({ from: T0 + 100_000, to: T0 + 101_000 }))).toEqual([101, 102]);
    // Reopen: blocks come from the table, not from memory.
    s.close();
    const again = openStore({ readonly: true });
    expect(seqsOf(again.query({ to: T0 - 1 }))).toEqual([2501]);
    expect(seqsOf(again.query({ from: T0 + 2505 * 1000 }))).toEqual([2507, 2508, 2509, 2510, 2511]);
  });

  it('iterate pages and tolerates commits between items', () => {
    const s = filled(2500);
    const it = s.iterate({ device: 'dev-2' });
    const got: number[] = [];
    for (const r of it) {
      got.push(r.seq);
      if (got.length === 10) {
        s.append(readings(5000, 3));
        s.flush();
      }
    }
    // dev-2 is i % 3 == 2: 833 of the first 2500; what was committed mid-iteration is in the next query.
    expect(got.length).toBe(833);
    expect(seqsOf(s.query({ device: 'dev-2', afterSeq: 2500 }))).toEqual([2501]);
  });

  it('latest() gives the newest reading of each device/point', () => {
    const s = filled(60);
    const latest = s.latest();
    expect(latest.map((r) => `${r.device}/${r.point}=${r.seq}`)).toEqual([
      'dev-0/moisture=55',
      'dev-0/temperature=58',
      'dev-1/moisture=59',
      'dev-1/temperature=56',
      'dev-2/moisture=57',
      'dev-2/temperature=60',
    ]);
    s.append([reading(60)]); // dev-0 moisture
    s.flush();
    expect(s.latest().find((r) => r.device === 'dev-0' && r.point === 'moisture')!.seq).toBe(61);
  });
});

describe('export', () => {
  const rows: (StoredReading & { gateway?: string })[] = [
    {
      seq: 7,
      device: 'soil-a1',
      point: 'moisture',
      value: 41.5,
      quality: 'good',
      ts: T0,
      mono: 1,
      bootId: 'b',
      synced: true,
      unit: '%',
      gateway: 'gw-1',
    },
    {
      seq: 8,
      device: 'soil-a1',
      point: 'label',
      value: 'say "hi", ok',
      quality: 'good',
      ts: T0 + 1,
      mono: 2,
      bootId: 'b',
      synced: true,
      gateway: 'gw,2',
    },
    {
      seq: 9,
      device: 'soil-a1',
      point: 'temperature',
      value: null,
      quality: 'timeout',
      ts: T0 + 2,
      mono: 3,
      bootId: 'b',
      synced: true,
      unit: '°C',
    },
  ];

  async function run(format: 'csv' | 'jsonl', withGateway = false): Promise<{ text: string; n: number }> {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const n = await writeExport(rows, format, out, { withGateway });
    out.end();
    return { text: Buffer.concat(chunks).toString('utf8'), n };
  }

  it('writes CSV with the documented header, ISO times and RFC 4180 quoting', async () => {
    const { text, n } = await run('csv');
    expect(n).toBe(3);
    expect(text).toBe(
      [
        'seq,device,point,ts,value,unit,quality',
        '7,soil-a1,moisture,2026-11-26T14:43:45.123Z,41.5,%,good',
        '8,soil-a1,label,2026-11-26T14:43:45.124Z,"say ""hi"", ok",,good',
        '9,soil-a1,temperature,2026-11-26T14:43:45.125Z,,°C,timeout',
        '',
      ].join('\n'),
    );
    const g = await run('csv', true);
    expect(g.text.split('\n').slice(0, 3)).toEqual([
      'gateway,seq,device,point,ts,value,unit,quality',
      'gw-1,7,soil-a1,moisture,2026-11-26T14:43:45.123Z,41.5,%,good',
      '"gw,2",8,soil-a1,label,2026-11-26T14:43:45.124Z,"say ""hi"", ok",,good',
    ]);
  });

  it('writes JSON lines with the same keys in the same order', async () => {
    const { text } = await run('jsonl');
    expect(text.split('\n')).toEqual([
      '{"seq":7,"device":"soil-a1","point":"moisture","ts":"2026-11-26T14:43:45.123Z","value":41.5,"unit":"%","quality":"good"}',
      '{"seq":8,"device":"soil-a1","point":"label","ts":"2026-11-26T14:43:45.124Z","value":"say \\"hi\\", ok","unit":null,"quality":"good"}',
      '{"seq":9,"device":"soil-a1","point":"temperature","ts":"2026-11-26T14:43:45.125Z","value":null,"unit":"°C","quality":"timeout"}',
      '',
    ]);
    const g = await run('jsonl', true);
    expect(g.text.split('\n')[0]).toBe(
      '{"gateway":"gw-1","seq":7,"device":"soil-a1","point":"moisture","ts":"2026-11-26T14:43:45.123Z","value":41.5,"unit":"%","quality":"good"}',
    );
  });

  it('waits for drain on a slow stream and loses nothing', async () => {
    const s = openStore({ batchMaxReadings: 1_000_000 });
    s.append(readings(0, 5000));
    s.flush();
    let writes = 0;
    const received: Buffer[] = [];
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, cb) {
        writes++;
        received.push(chunk);
        setImmediate(cb);
      },
    });
    const n = await writeExport(s.iterate({}), 'csv', slow);
    expect(n).toBe(5000);
    const lines = Buffer.concat(received).toString('utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(5001);
    expect(lines[5000]!.startsWith('5000,dev-1,temperature,')).toBe(true);
    expect(writes).toBeGreaterThan(1);
  });

  it('refuses an unknown format with a typed error', async () => {
    await expect(writeExport([], 'xml' as never, new PassThrough())).rejects.toMatchObject({ code: 'USAGE' });
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
