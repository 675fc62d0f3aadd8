import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../cloud-sync/protocol/native.js';
import type { TelemetryBatch, WireReading } from '../../cloud-sync/protocol/types.js';
import { openReceiverStore, type ReceivedReading, type ReceiverStore } from '../../cloud-sync/receiver/index.js';
import { LAND_ABOVE_READINGS } from '../../cloud-sync/receiver/sqlite-landing.js';
import { SqliteReceiverStore } from '../../cloud-sync/receiver/sqlite-store.js';

/**
 * The SQLite receiver lands a backlog's large batches whole (one row of `landed`, committed with
 * the watermark) and turns them into rows when it is idle or before anything reads them. Real
 * database files; the rows are counted through a connection of the test's own, as a city analyst
 * with the sqlite3 shell would see them.
 */

const GW = 'dl-gw-land';
const EPOCH = '0123456789abcdef0123456789abcdef';
const T0 = Date.UTC(2026, 11, 1);

let dir: string;
const open: ReceiverStore[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-landing-'));
});
afterAll(async () => {
  for (const s of open) await s.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

function reading(seq: number): WireReading {
  // every kind of value the wire carries: numbers, text, nothing (a failed read)
  const k = seq % 10;
  return {
    seq,
    device: `dev-${seq % 7}`,
    point: k === 3 ? 'firmware' : 'temperature',
    ts: T0 + seq * 1000,
    value: k === 3 ? `v1.${seq}` : k === 7 ? null : Math.round(seq * 0.37 * 10) / 10,
    unit: k === 3 ? null : '°C',
    quality: k === 7 ? 'timeout' : 'good',
  };
}

function batch(first: number, last: number): TelemetryBatch {
  const readings: WireReading[] = [];
  for (let s = first; s <= last; s++) readings.push(reading(s));
  return { v: 2, gateway: GW, epoch: EPOCH, firstSeq: first, lastSeq: last, readings };
}

/** What the file holds, read as anyone with SQL would: rows, distinct keys, landed batches. */
function onDisk(file: string): { rows: number; distinct: number; landed: number } {
  const db = new Database(file, { readonly: true });
  try {
    const one = (sql: string) => db.prepare(sql).pluck().get() as number;
    return {
      rows: one('SELECT count(*) FROM readings'),
      distinct: one('SELECT count(DISTINCT seq) FROM readings'),
      landed: one('SELECT count(*) FROM landed'),
    };
  } finally {
    db.close();
  }
}

async function all(store: ReceiverStore): Promise<ReceivedReading[]> {
  const out: ReceivedReading[] = [];
  for await (const page of store.readings({ gateway: GW })) out.push(...page);
  return out;
}

async function until(pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the SQLite receiver lands large batches', () => {
  it('a backlog batch is one landed row, acknowledged at once; a query sees every reading, values as sent', async () => {
    const file = join(dir, 'query.db');
    const store = new SqliteReceiverStore(file);
    open.push(store);
    await store.init();
    const b = batch(1, 5000);
    const r = await store.writeTelemetry(b, Date.now(), encodeTelemetry(b));
    expect(r).toEqual({ inserted: 5000, duplicates: 0, watermarks: { seq: 5000, events: 0 }, landed: true });
    expect(onDisk(file)).toEqual({ rows: 0, distinct: 0, landed: 1 });
    expect(store.landedReadings()).toBe(5000); // what the receiver's stats line reports
    // the reader expands first: everything stored is there, exactly as it was sent
    const got = await all(store);
    expect(got.map(({ gateway, epoch, ...w }) => w)).toEqual(b.readings);
    expect(onDisk(file)).toEqual({ rows: 5000, distinct: 5000, landed: 0 });
    expect(store.landedReadings()).toBe(0);
    expect(await store.counts()).toEqual({ readings: 5000, events: 0 });
  });

  it('a small (live) batch becomes rows in its own transaction', async () => {
    const file = join(dir, 'live.db');
    const store = new SqliteReceiverStore(file);
    open.push(store);
    await store.init();
    await store.writeTelemetry(batch(1, LAND_ABOVE_READINGS), Date.now());
    expect(onDisk(file)).toEqual({ rows: LAND_ABOVE_READINGS, distinct: LAND_ABOVE_READINGS, landed: 0 });
  });

  it('an idle receiver turns landed batches into rows by itself; rows carry when they were written', async () => {
    const file = join(dir, 'idle.db');
    const store = new SqliteReceiverStore(file);
    open.push(store);
    await store.init();
    const landedAt = Date.now() - 60_000;
    await store.writeTelemetry(batch(1, 3000), landedAt);
    await store.writeTelemetry(batch(3001, 6000), landedAt);
    expect(onDisk(file).landed).toBe(2);
    await until(() => onDisk(file).landed === 0, 5_000);
    expect(onDisk(file)).toEqual({ rows: 6000, distinct: 6000, landed: 0 });
    const db = new Database(file, { readonly: true });
    const minAt = db.prepare('SELECT min(received_at) FROM readings').pluck().get() as number;
    db.close();
    // a reader that follows rows by arrival (the NGSI-LD output) must not find them behind its cursor
    expect(minAt).toBeGreaterThan(landedAt);
  });

  it('resends in other batch shapes, landed and not, leave each reading once; duplicates are counted', async () => {
    const file = join(dir, 'dupes.db');
    const store = new SqliteReceiverStore(file);
    open.push(store);
    await store.init();
    await store.writeTelemetry(batch(1, 5000), Date.now());
    // a small resend of part of it, and a large one overlapping its end
    const small = await store.writeTelemetry(batch(4001, 4500), Date.now());
    expect(small.inserted).toBe(500); // rows written directly (the landed copy is not rows yet)
    const big = await store.writeTelemetry(batch(2001, 7000), Date.now());
    expect(big).toMatchObject({ inserted: 2000, duplicates: 3000, watermarks: { seq: 7000 } });
    const got = await all(store);
    expect(got.map((r) => r.seq)).toEqual(Array.from({ length: 7000 }, (_, i) => i + 1));
    expect(onDisk(file)).toEqual({ rows: 7000, distinct: 7000, landed: 0 });
  });

  it('survives a stop before expansion: a read-only opener (export, archive) expands what is landed first', async () => {
    const file = join(dir, 'crash.db');
    const store = new SqliteReceiverStore(file);
    await store.init();
    await store.writeTelemetry(batch(1, 4000), Date.now());
    await store.writeTelemetry(batch(4001, 9000), Date.now());
    await store.close(); // as a kill would: the landed rows are committed, no rows yet
    expect(onDisk(file)).toEqual({ rows: 0, distinct: 0, landed: 2 });

    const reader = await openReceiverStore(file, { readonly: true });
    open.push(reader);
    const got = await all(reader);
    expect(got.length).toBe(9000);
    expect(got[8999]).toMatchObject({ gateway: GW, epoch: EPOCH, ...reading(9000) });
    expect(onDisk(file)).toEqual({ rows: 9000, distinct: 9000, landed: 0 });
    expect(await reader.watermarks(GW, EPOCH)).toEqual({ seq: 9000, events: 0 });
  });

  it('a receiver restarted on landed batches expands them once idle', async () => {
    const file = join(dir, 'restart.db');
    const first = new SqliteReceiverStore(file);
    await first.init();
    await first.writeTelemetry(batch(1, 2500), Date.now());
    await first.close();
    const second = new SqliteReceiverStore(file);
    open.push(second);
    await second.init();
    await until(() => onDisk(file).landed === 0, 5_000);
    expect(onDisk(file)).toEqual({ rows: 2500, distinct: 2500, landed: 0 });
  });

  it('export and archive still read a file of the previous schema (3) as it is; an older one gets a clear word', async () => {
    const file = join(dir, 'v3.db');
    const store = new SqliteReceiverStore(file);
    await store.init();
    await store.writeTelemetry(batch(1, 200), Date.now());
    await store.close();
    // as the previous release left it: no landed table, user_version 3
    const db = new Database(file);
    db.exec('DROP TABLE landed');
    db.pragma('user_version = 3');
    db.close();
    const reader = await openReceiverStore(file, { readonly: true });
    open.push(reader);
    expect((await all(reader)).length).toBe(200);
    await reader.close();
    const old = new Database(file);
    old.pragma('user_version = 2');
    old.close();
    await expect(openReceiverStore(file, { readonly: true })).rejects.toThrow(
      /has receiver schema version 2, older than this release reads: start `langbiang receiver` on it once/,
    );
  });

  it('a reader open for long sees what lands after it opened; landAbove 0 lands every message', async () => {
    const file = join(dir, 'long-reader.db');
    const store = new SqliteReceiverStore(file, { landAbove: 0 });
    open.push(store);
    await store.init();
    const first = await store.writeTelemetry(batch(1, 10), Date.now());
    expect(first.landed).toBe(true);
    const reader = await openReceiverStore(file, { readonly: true });
    open.push(reader);
    expect((await reader.counts()).readings).toBe(10);
    // the receiver keeps landing while the reader stays open (a test watching the city, a long export)
    await store.writeTelemetry(batch(11, 25), Date.now());
    expect(onDisk(file).landed).toBe(1);
    expect((await reader.counts()).readings).toBe(25);
    expect((await all(reader)).map((r) => r.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
  });
});
