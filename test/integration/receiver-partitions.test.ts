import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NATIVE_VERSION } from '../../cloud-sync/protocol/native.js';
import type { WireReading } from '../../cloud-sync/protocol/types.js';
import { openReceiverStore, type ReceivedReading, type ReceiverStore } from '../../cloud-sync/receiver/index.js';
import { MIGRATIONS } from '../../cloud-sync/receiver/pg-store.js';
import { runCli } from '../helpers/cli.js';
import { type Postgres, startPostgres } from '../helpers/postgres.js';

/**
 * PostgreSQL receiver schema v3: readings in daily partitions, made on demand by the writes;
 * retention drops whole days; a v2 database is upgraded in place, its rows kept in the default
 * partition and still found, deduplicated and removed by retention.
 */

let server: Postgres;
let dir: string;
const DAY = 86_400_000;
const today0 = Math.floor(Date.now() / DAY) * DAY;
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lb-partitions-'));
  server = await startPostgres();
}, 60_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function readings(first: number, days: number[]): WireReading[] {
  return days.map((d, i) => ({
    seq: first + i,
    device: 'thm-1',
    point: 'temperature',
    ts: d + 3_600_000,
    value: 20 + i,
    unit: '°C',
    quality: 'good' as const,
  }));
}

async function write(store: ReceiverStore, first: number, days: number[]) {
  const rs = readings(first, days);
  return store.writeTelemetry(
    { v: NATIVE_VERSION, gateway: 'gw-1', epoch: 'e1', firstSeq: first, lastSeq: first + rs.length - 1, readings: rs },
    Date.now(),
  );
}

async function all(store: ReceiverStore): Promise<ReceivedReading[]> {
  const out: ReceivedReading[] = [];
  for await (const p of store.readings()) out.push(...p);
  return out;
}

async function partitions(url: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'langbiang_readings' ORDER BY 1`,
    );
    return r.rows.map((x) => x.name);
  } finally {
    await c.end();
  }
}

describe('PostgreSQL daily partitions', () => {
  it('makes one partition per day written, keeps redeliveries out, and retention drops whole days', async () => {
    const url = await server.createDatabase('parts_new');
    const store = await openReceiverStore(url);
    try {
      const days = [today0 - 3 * DAY, today0 - 2 * DAY, today0 - DAY, today0];
      expect((await write(store, 1, days)).inserted).toBe(4);
      // a redelivery of the same batch: nothing twice
      expect(await write(store, 1, days)).toMatchObject({ inserted: 0, duplicates: 4 });
      const names = days.map((d) => `langbiang_readings_p${day(d).replace(/-/g, '')}`);
      expect(await partitions(url)).toEqual(['langbiang_readings_before_v3', ...names].sort());
    } finally {
      await store.close();
    }
    const r = await runCli(['retention', '--receiver-db', url, '--keep-days', '2']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`removed the readings of 2 days (${day(today0 - 3 * DAY)} … ${day(today0 - 2 * DAY)})\n`);
    const after = await openReceiverStore(url, { readonly: true });
    try {
      expect((await all(after)).map((x) => x.seq)).toEqual([3, 4]);
    } finally {
      await after.close();
    }
    expect((await partitions(url)).filter((n) => /_p\d{8}$/.test(n))).toHaveLength(2);
  });

  it('upgrades a version 2 database in place: its rows stay, found and deduplicated, then age out', async () => {
    const url = await server.createDatabase('parts_v2');
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query('CREATE TABLE langbiang_receiver_meta (key text PRIMARY KEY, value text NOT NULL)');
      await c.query(MIGRATIONS[0]!);
      await c.query(MIGRATIONS[1]!);
      await c.query("INSERT INTO langbiang_receiver_meta VALUES ('schema_version', '2')");
      await c.query(
        `INSERT INTO langbiang_readings (gateway, epoch, seq, device, point, ts, value_num, unit, quality, received_at)
         VALUES ('gw-1', 'e1', 1, 'thm-1', 'temperature', $1, 20, '°C', 'good', 0)`,
        [today0 - 5 * DAY + 3_600_000],
      );
    } finally {
      await c.end();
    }
    const store = await openReceiverStore(url);
    try {
      // seq 1 again (a replay) and seq 2 on the same old day: the day's rows are in the default
      // partition, so it gets none, and the replay is still a duplicate
      expect(await write(store, 1, [today0 - 5 * DAY, today0 - 5 * DAY])).toMatchObject({ inserted: 1, duplicates: 1 });
      expect(await write(store, 3, [today0])).toMatchObject({ inserted: 1 });
      expect((await all(store)).map((x) => [x.seq, x.value])).toEqual([
        [1, 20],
        [2, 21],
        [3, 20],
      ]);
      expect(await partitions(url)).toEqual([
        'langbiang_readings_before_v3',
        `langbiang_readings_p${day(today0).replace(/-/g, '')}`,
      ]);
      expect(await store.dropDaysBefore(today0)).toEqual([day(today0 - 5 * DAY)]);
      expect((await all(store)).map((x) => x.seq)).toEqual([3]);
    } finally {
      await store.close();
    }
  });
});

it('retention on SQLite deletes the old days, and refuses a bad --keep-days', async () => {
  const file = join(dir, 'rx.db');
  const store = await openReceiverStore(file);
  await write(store, 1, [today0 - 10 * DAY, today0 - DAY, today0]);
  await store.close();
  const r = await runCli(['retention', '--receiver-db', file, '--keep-days', '2']);
  expect(r.stdout).toBe(`removed the readings of 1 days (${day(today0 - 10 * DAY)} … ${day(today0 - 10 * DAY)})\n`);
  const bad = await runCli(['retention', '--receiver-db', file, '--keep-days', '0']);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toBe('langbiang: --keep-days "0": a whole number of days, at least 1\n');
});
