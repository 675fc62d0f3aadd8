import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TelemetryBatch, WireReading } from '../../cloud-sync/protocol/types.js';
import { openReceiverStore, type ReceiverStore } from '../../cloud-sync/receiver/index.js';

/**
 * The SQLite receiver writes a batch in multi-row INSERT statements (100, 10 and 1 rows at a
 * time): every reading exactly once whatever the batch's length, duplicates counted, values kept
 * as they came, and a batch that fails part-way leaves nothing of itself behind. Real files.
 */

const GW = 'dl-batch-0001';
const EPOCH = 'e'.repeat(32);
let dir: string;
const stores: ReceiverStore[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-rx-batch-'));
});

afterAll(async () => {
  for (const s of stores) await s.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

/** Every fifth value is text, every seventh null, every third unit null: what the wire allows. */
function reading(seq: number): WireReading {
  const value = seq % 7 === 0 ? null : seq % 5 === 0 ? `state-${seq}` : seq / 4;
  return {
    seq,
    device: `dev-${seq % 13}`,
    point: `p${seq % 9}`,
    ts: 1_800_000_000_000 + seq * 1000,
    value,
    unit: seq % 3 === 0 ? null : '°C',
    quality: seq % 11 === 0 ? 'uncertain' : 'good',
  };
}

function telemetry(first: number, last: number, patch?: (r: WireReading) => WireReading): TelemetryBatch {
  const readings: WireReading[] = [];
  for (let s = first; s <= last; s++) readings.push(patch ? patch(reading(s)) : reading(s));
  return { v: 2, gateway: GW, epoch: EPOCH, firstSeq: first, lastSeq: last, readings };
}

async function open(name: string): Promise<ReceiverStore> {
  const s = await openReceiverStore(join(dir, `${name}.db`));
  stores.push(s);
  return s;
}

async function all(s: ReceiverStore): Promise<WireReading[]> {
  const out: WireReading[] = [];
  for await (const page of s.readings({ gateway: GW })) {
    for (const { gateway: _g, epoch: _e, ...r } of page) out.push(r);
  }
  return out;
}

describe('the SQLite receiver writes a batch in multi-row statements', () => {
  it('stores every reading of batches of any length once, with its value, unit and quality as sent', async () => {
    const s = await open('lengths');
    // 1, 9, 10, 11, 99, 100, 101 and 237 rows: every mix of the 100-, 10- and 1-row statements
    let next = 1;
    for (const len of [1, 9, 10, 11, 99, 100, 101, 237]) {
      const r = await s.writeTelemetry(telemetry(next, next + len - 1), 1);
      expect(r.inserted).toBe(len);
      expect(r.duplicates).toBe(0);
      expect(r.watermarks.seq).toBe(next + len - 1);
      next += len;
    }
    const stored = await all(s);
    expect(stored).toEqual(telemetry(1, next - 1).readings);
    expect(typeof stored.find((r) => r.seq === 8)!.value).toBe('number');
    expect(stored.find((r) => r.seq === 10)!.value).toBe('state-10');
    expect(stored.find((r) => r.seq === 14)!.value).toBeNull();
  });

  it('a batch overlapping what is stored inserts only the new readings and counts the rest as duplicates', async () => {
    const s = await open('overlap');
    await s.writeTelemetry(telemetry(1, 150), 1);
    const r = await s.writeTelemetry(telemetry(101, 337), 2);
    expect(r.inserted).toBe(187);
    expect(r.duplicates).toBe(50);
    expect(r.watermarks.seq).toBe(337);
    const stored = await all(s);
    expect(stored.map((x) => x.seq)).toEqual(Array.from({ length: 337 }, (_, i) => i + 1));
    expect(await s.counts()).toEqual({ readings: 337, events: 0 });
  });

  it('a batch that fails part-way stores none of its readings and leaves the watermark where it was', async () => {
    const s = await open('atomic');
    await s.writeTelemetry(telemetry(1, 100), 1);
    // seq 340 has no point: the 3rd of its 100-row statements fails after two went in
    const bad = telemetry(101, 400, (r) => (r.seq === 340 ? { ...r, point: null as unknown as string } : r));
    await expect(s.writeTelemetry(bad, 2)).rejects.toMatchObject({ code: 'STORE_FAILED' });
    expect(await s.counts()).toEqual({ readings: 100, events: 0 });
    expect(await s.watermarks(GW, EPOCH)).toEqual({ seq: 100, events: 0 });
    // the same span, sent again whole, goes in
    const again = await s.writeTelemetry(telemetry(101, 400), 3);
    expect(again.inserted).toBe(300);
    expect(again.watermarks.seq).toBe(400);
  });
});
