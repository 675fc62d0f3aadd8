import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reading } from '../../gateway/core/reading.js';
import { STORE_FILE, Store } from '../../gateway/store/index.js';
import { runCli } from '../helpers/cli.js';

/**
 * `langbiang sql` as a technician at a field unit uses it: plain SQL over the packed store, through
 * the real CLI, checked against what the store holds (read back with the store's own iterator).
 */
let dir: string;
const T0 = Date.UTC(2026, 11, 1, 0, 0, 0);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-sql-'));
  const store = Store.open({ dataDir: dir });
  const rows: Reading[] = [];
  for (let i = 0; i < 600; i++) {
    const device = ['soil-a1', 'soil-a2', 'climate-1'][i % 3]!;
    rows.push({
      device,
      point: device.startsWith('soil') ? 'moisture' : 'temperature',
      value: device.startsWith('soil') ? 30 + (i % 7) : 18 + (i % 5) / 10,
      unit: device.startsWith('soil') ? '%' : '°C',
      quality: i === 7 ? 'timeout' : 'good',
      ts: T0 + i * 60_000,
      mono: i * 60_000,
      bootId: 'b',
      synced: true,
    });
  }
  store.append(rows);
  store.recordEvent('alarm', { rule: 'flood', state: 'active' });
  store.flush();
  store.close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('langbiang sql', () => {
  it('filters and aggregates readings by device, point and time, as the store holds them', async () => {
    const r = await runCli([
      'sql',
      '--data-dir',
      dir,
      '--format',
      'jsonl',
      "SELECT device, count(*) AS n, round(avg(value), 3) AS mean FROM readings WHERE point = 'moisture' AND ts >= '2026-12-01T05:00' GROUP BY device ORDER BY device",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const got = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    // the same computed from the store's own iterator
    const store = Store.open({ dataDir: dir, readonly: true });
    const want = new Map<string, number[]>();
    for (const x of store.iterate({ point: 'moisture', from: Date.UTC(2026, 11, 1, 5) }))
      want.set(x.device, [...(want.get(x.device) ?? []), x.value as number]);
    store.close();
    expect(got).toEqual(
      [...want.entries()].sort().map(([device, v]) => ({
        device,
        n: v.length,
        mean: Math.round((v.reduce((a, b) => a + b, 0) / v.length) * 1000) / 1000,
      })),
    );
  });

  it('has the export columns, ts as ISO 8601 UTC, quality as a word; the table-valued form reads one device', async () => {
    const r = await runCli([
      'sql',
      '--data-dir',
      dir,
      '--format',
      'csv',
      "SELECT * FROM readings('soil-a2', '2026-12-01T00:00:00Z', '2026-12-01T00:10:00Z')",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('seq,device,point,ts,value,unit,quality');
    expect(lines.slice(1)).toEqual([
      '2,soil-a2,moisture,2026-12-01T00:01:00.000Z,31,%,good',
      '5,soil-a2,moisture,2026-12-01T00:04:00.000Z,34,%,good',
      '8,soil-a2,moisture,2026-12-01T00:07:00.000Z,30,%,timeout',
      // both ends inclusive
      '11,soil-a2,moisture,2026-12-01T00:10:00.000Z,33,%,good',
    ]);
    const any = await runCli([
      'sql',
      '--data-dir',
      dir,
      "SELECT count(*) AS n FROM readings('*', '2026-12-01T09:00Z')",
    ]);
    expect(any.stdout).toMatch(/^n\s*\n-+\s*\n60\s*$/m);
    const ev = await runCli([
      'sql',
      '--data-dir',
      dir,
      "SELECT kind, json_extract(data, '$.rule') AS rule FROM events",
    ]);
    expect(ev.stdout).toMatch(/alarm\s+flood/);
    expect(ev.stdout).toMatch(/\(1 row\)/);
  });

  it('is read-only and says what is wrong in one sentence', async () => {
    const write = await runCli(['sql', '--data-dir', dir, 'DELETE FROM readings']);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/langbiang: SQL: /);
    const create = await runCli(['sql', '--data-dir', dir, 'CREATE TABLE x (a)']);
    expect(create.stderr).toMatch(/only queries that return rows/);
    const bad = await runCli(['sql', '--data-dir', dir, 'SELECT nope FROM readings']);
    expect(bad.stderr).toMatch(/SQL: no such column: nope/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const badTime = await runCli(['sql', '--data-dir', dir, "SELECT * FROM readings('*', 'yesterday-ish')"]);
    expect(badTime.stderr).toMatch(/readings\(…, from\)/);
    const none = await runCli(['sql', '--data-dir', join(dir, 'nope'), 'SELECT 1']);
    expect(none.stderr).toMatch(/no gateway database in/);
    // the store is untouched
    const db = new Database(join(dir, STORE_FILE), { readonly: true });
    expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'x'").pluck().get()).toBe(0);
    db.close();
  });
});
