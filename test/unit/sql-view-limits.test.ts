import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../gateway/store/index.js';
import { openSqlView, runQuery } from '../../gateway/store/sql-view.js';

/**
 * The limits of the SQL view as the console's query box uses them, on a real store: rows and
 * bytes cut with `truncated` said, and a connection that writes nothing whatever the statement.
 */
let dir: string;
let store: Store;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-sql-limits-'));
  const w = Store.open({ dataDir: dir });
  w.append(
    Array.from({ length: 50 }, (_, i) => ({
      device: 'soil-a1',
      point: 'moisture',
      value: i,
      unit: '%',
      quality: 'good' as const,
      ts: Date.UTC(2026, 11, 1) + i * 1000,
      mono: i * 1000,
      bootId: 'b',
      synced: true,
    })),
  );
  w.flush();
  w.close();
  store = Store.open({ dataDir: dir, readonly: true });
});

afterAll(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('runQuery limits', () => {
  it('returns at most `limit` rows and says when there were more', () => {
    const db = openSqlView(store);
    expect(runQuery(db, 'SELECT seq FROM readings ORDER BY seq', { limit: 10 })).toMatchObject({ truncated: true });
    expect(runQuery(db, 'SELECT seq FROM readings ORDER BY seq', { limit: 10 }).rows).toEqual(
      Array.from({ length: 10 }, (_, i) => [i + 1]),
    );
    const all = runQuery(db, 'SELECT seq FROM readings', { limit: 50 });
    expect(all.rows).toHaveLength(50);
    expect(all.truncated).toBe(false);
    expect(runQuery(db, 'SELECT count(*) FROM readings').rows).toEqual([[50]]);
    db.close();
  });

  it('stops at about `maxBytes` of cells', () => {
    const db = openSqlView(store);
    // 50 rows of a 1000-character text (about 1003 bytes as JSON): 10 fit in 10,100 bytes
    const r = runQuery(db, "SELECT printf('%.1000c', 'x') AS t FROM readings", { maxBytes: 10_100 });
    expect(r.rows).toHaveLength(10);
    expect(r.rows[0]![0]).toBe('x'.repeat(1000));
    expect(r.truncated).toBe(true);
    db.close();
  });

  it('writes nothing, even through a statement that returns rows', () => {
    const db = openSqlView(store);
    expect(() => runQuery(db, 'CREATE TABLE t(x)')).toThrow(/only queries that return rows/);
    expect(() => runQuery(db, "INSERT INTO events(kind) VALUES ('x') RETURNING id")).toThrow(/^SQL: /);
    expect(() => runQuery(db, "ATTACH DATABASE ':memory:' AS x")).toThrow(/only queries that return rows/);
    expect(db.pragma('query_only', { simple: true })).toBe(1);
    db.close();
  });
});
