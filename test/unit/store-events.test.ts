import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Reading } from '../../gateway/core/reading.js';
import { EVENTS_CURSOR, STORE_FILE, Store, type StoreOptions } from '../../gateway/store/index.js';
import { MIGRATIONS } from '../../gateway/store/schema.js';

// The events table the sync agent publishes on `events`: gaps, command audit, alarms…
let dir: string;
const open: Store[] = [];
function openStore(o: Partial<StoreOptions> = {}): Store {
  const s = Store.open({ dataDir: dir, batchMaxDelayMs: 60_000, ...o });
  open.push(s);
  return s;
}
function readings(from: number, n: number): Reading[] {
  return Array.from({ length: n }, (_, k) => ({
    device: 'dev',
    point: `p${(from + k) % 5}`,
    value: from + k,
    quality: 'good' as const,
    ts: 1_700_000_000_000 + (from + k) * 1000,
    mono: from + k,
    bootId: 'b',
    synced: true,
  }));
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-store-events-'));
});
afterEach(() => {
  for (const s of open.splice(0)) {
    try {
      s.close();
    } catch {}
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('store: events', () => {
  it('records events with increasing ids that survive a reopen; eventsAfter pages by id', () => {
    let s = openStore();
    expect(s.lastEventId()).toBe(0);
    const a = s.recordEvent('command', { id: 'c1', ok: true });
    const b = s.recordEvent('alarm', { message: 'cửa tủ mở' });
    expect(b).toBe(a + 1);
    expect(s.eventsAfter(0, 10).map((e) => [e.id, e.kind, e.data])).toEqual([
      [a, 'command', { id: 'c1', ok: true }],
      [b, 'alarm', { message: 'cửa tủ mở' }],
    ]);
    expect(s.eventsAfter(a, 10).map((e) => e.id)).toEqual([b]);
    expect(s.eventsAfter(0, 1)).toHaveLength(1);
    s.setCursor(EVENTS_CURSOR, a);
    s.close();
    s = openStore();
    expect(s.lastEventId()).toBe(b);
    expect(s.getCursor(EVENTS_CURSOR)).toBe(a);
  });

  it('never reuses an id, even after the newest event row is deleted', () => {
    const s = openStore();
    s.recordEvent('alarm', {});
    const last = s.recordEvent('alarm', {});
    s.close();
    const db = new Database(join(dir, STORE_FILE));
    db.prepare('DELETE FROM events').run();
    db.close();
    const s2 = openStore();
    expect(s2.lastEventId()).toBe(last);
    expect(s2.recordEvent('alarm', {})).toBe(last + 1);
  });

  it('refuses data that is not a small JSON object, naming the event kind', () => {
    const s = openStore();
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(() => s.recordEvent('alarm', loop)).toThrow(/event alarm: data is not JSON-serialisable/);
    expect(() => s.recordEvent('alarm', [] as never)).toThrow(/must be an object/);
    expect(() => s.recordEvent('alarm', { big: 'x'.repeat(70_000) })).toThrow(/larger than/);
    expect(s.lastEventId()).toBe(0);
  });

  it('a byte-cap gap is also a gap event with the same numbers', () => {
    const s = openStore({ maxBytes: 128 * 1024, batchMaxReadings: 1_000_000 });
    let next = 0;
    while (s.gapsAfter(0).length === 0) {
      s.append(readings(next, 500));
      next += 500;
      s.flush();
      expect(next).toBeLessThan(100_000);
    }
    const gaps = s.gapsAfter(0);
    const events = s.eventsAfter(0, 100).filter((e) => e.kind === 'gap');
    expect(events.map((e) => e.data)).toEqual(
      gaps.map((g) => ({ gapId: g.id, firstSeq: g.firstSeq, lastSeq: g.lastSeq, count: g.count, reason: 'byte_cap' })),
    );
    expect(events[0]!.ts).toBe(gaps[0]!.ts);
  });

  it('an ingest_overflow gap is also a gap event', () => {
    const s = openStore({ maxBufferedReadings: 10, batchMaxReadings: 1_000_000 });
    s.append(readings(0, 25));
    s.flush();
    const [e] = s.eventsAfter(0, 10);
    expect(e).toMatchObject({ kind: 'gap', data: { firstSeq: 1, lastSeq: 15, count: 15, reason: 'ingest_overflow' } });
  });

  it('the v2 migration copies gaps recorded by a v1 store into events', () => {
    // A v1 database with one gap, as the previous release left it.
    const db = new Database(join(dir, STORE_FILE));
    db.pragma('journal_mode = WAL');
    db.transaction(() => {
      MIGRATIONS[0]!(db);
      db.prepare("INSERT INTO gaps (first_seq, last_seq, count, reason, ts) VALUES (1, 40, 40, 'byte_cap', 123)").run();
      db.pragma('user_version = 1');
    })();
    db.close();
    const s = openStore();
    expect(s.eventsAfter(0, 10)).toEqual([
      { id: 1, kind: 'gap', ts: 123, data: { gapId: 1, firstSeq: 1, lastSeq: 40, count: 40, reason: 'byte_cap' } },
    ]);
  });
});
