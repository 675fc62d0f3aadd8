import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventsBatch, TelemetryBatch, WireReading } from '../../cloud-sync/protocol/types.js';
import { openReceiverStore, type ReceiverStore } from '../../cloud-sync/receiver/index.js';
import { advanceWatermark, type Range } from '../../cloud-sync/receiver/watermark.js';
import { type Postgres, startPostgres } from '../helpers/postgres.js';

/**
 * The receiver's end-to-end watermark: the highest seq such that every reading up to it is stored
 * at the city or inside a gap the city holds. Checked as a pure function, then on real databases —
 * SQLite, and PostgreSQL written by two receivers at once in any order.
 */

let pg: Postgres;
let dir: string;
const stores: ReceiverStore[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lb-watermark-'));
  pg = await startPostgres();
}, 60_000);

afterAll(async () => {
  for (const s of stores) await s.close().catch(() => {});
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('advanceWatermark: the watermark moves over every range that reaches it', () => {
  const table: { name: string; upto: number; ranges: Range[]; want: number; above: Range[] }[] = [
    { name: 'in order', upto: 0, ranges: [[1, 10]], want: 10, above: [] },
    { name: 'a hole keeps it', upto: 0, ranges: [[2, 10]], want: 0, above: [[2, 10]] },
    {
      name: 'out of order, then the hole closes',
      upto: 0,
      ranges: [
        [11, 20],
        [1, 10],
      ],
      want: 20,
      above: [],
    },
    {
      name: 'adjacent ranges merge',
      upto: 10,
      ranges: [
        [21, 30],
        [11, 20],
        [32, 40],
      ],
      want: 30,
      above: [[32, 40]],
    },
    {
      name: 'overlap',
      upto: 5,
      ranges: [
        [3, 8],
        [7, 12],
      ],
      want: 12,
      above: [],
    },
    {
      name: 'a duplicate changes nothing',
      upto: 20,
      ranges: [
        [1, 10],
        [11, 20],
      ],
      want: 20,
      above: [],
    },
    {
      name: 'a gap fills the hole',
      upto: 100,
      ranges: [
        [151, 200],
        [101, 150],
      ],
      want: 200,
      above: [],
    },
    {
      name: 'ranges below it are dropped',
      upto: 50,
      ranges: [
        [1, 40],
        [60, 70],
      ],
      want: 50,
      above: [[60, 70]],
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      const r = advanceWatermark(t.upto, t.ranges);
      expect(r.upto).toBe(t.want);
      expect(r.above).toEqual(t.above);
    });
  }

  it('random batches in random order always end at the top, and never pass a missing one', () => {
    for (let round = 0; round < 50; round++) {
      const batches: Range[] = [];
      let s = 1;
      while (s <= 1000) {
        const n = 1 + Math.floor(Math.random() * 40);
        batches.push([s, Math.min(1000, s + n - 1)]);
        s += n;
      }
      const missing = Math.floor(Math.random() * batches.length);
      const order = batches.map((_, i) => i).sort(() => Math.random() - 0.5);
      let upto = 0;
      let above: Range[] = [];
      for (const i of order) {
        if (i === missing) continue;
        ({ upto, above } = advanceWatermark(upto, [...above, batches[i]!]));
        expect(upto).toBeLessThan(batches[missing]![0]);
      }
      ({ upto, above } = advanceWatermark(upto, [...above, batches[missing]!]));
      expect(upto).toBe(1000);
      expect(above).toEqual([]);
    }
  });
});

const GW = 'dl-gw-wm';
const EPOCH = 'a1b2c3d4';

function reading(seq: number): WireReading {
  return {
    seq,
    device: 'soil-a1',
    point: 'moisture',
    ts: 1_700_000_000_000 + seq * 1000,
    value: seq / 10,
    unit: '%',
    quality: 'good',
  };
}

/** A telemetry batch over first..last with the seqs in `holes` left out (dropped: a gap names them). */
function telemetry(
  first: number,
  last: number,
  o: { epoch?: string; holes?: number[]; fromConfirmed?: boolean } = {},
): TelemetryBatch {
  const readings: WireReading[] = [];
  for (let s = first; s <= last; s++) if (!o.holes?.includes(s)) readings.push(reading(s));
  const b: TelemetryBatch = { v: 2, gateway: GW, epoch: o.epoch ?? EPOCH, firstSeq: first, lastSeq: last, readings };
  if (o.fromConfirmed) b.fromConfirmed = true;
  return b;
}

function gapEvents(
  after: number,
  gaps: { id: number; firstSeq: number; lastSeq: number }[],
  epoch = EPOCH,
): EventsBatch {
  return {
    v: 1,
    gateway: GW,
    epoch,
    after,
    events: gaps.map((g) => ({
      id: g.id,
      kind: 'gap',
      ts: 1_700_000_000_000,
      data: {
        gapId: g.id,
        firstSeq: g.firstSeq,
        lastSeq: g.lastSeq,
        count: g.lastSeq - g.firstSeq + 1,
        reason: 'byte_cap',
      },
    })),
  };
}

async function open(url: string): Promise<ReceiverStore> {
  const s = await openReceiverStore(url);
  stores.push(s);
  return s;
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`watermark in the ${backend} receiver database`, () => {
    /** two receivers on one database, as on a shared subscription */
    async function twoReceivers(name: string): Promise<[ReceiverStore, ReceiverStore]> {
      const url = backend === 'sqlite' ? join(dir, `${name}.db`) : await pg.createDatabase(`wm_${name}`);
      return [await open(url), await open(url)];
    }

    it('out-of-order commits from two receivers: it stays below the hole, then jumps over both', async () => {
      const [a, b] = await twoReceivers('order');
      const r1 = await a.writeTelemetry(telemetry(101, 200), 1);
      expect(r1.watermarks.seq).toBe(0);
      const r2 = await b.writeTelemetry(telemetry(1, 100), 2);
      expect(r2.watermarks.seq).toBe(200);
      expect(await a.watermarks(GW, EPOCH)).toEqual({ seq: 200, events: 0 });
    });

    it('a duplicate batch inserts nothing and keeps the watermark (and still reports it)', async () => {
      const [a, b] = await twoReceivers('dup');
      await a.writeTelemetry(telemetry(1, 50), 1);
      const again = await b.writeTelemetry(telemetry(1, 50), 2);
      expect(again.inserted).toBe(0);
      expect(again.duplicates).toBe(50);
      expect(again.watermarks.seq).toBe(50);
    });

    it('a hole the gateway dropped is closed by the gap event that names it, in either order', async () => {
      const [a, b] = await twoReceivers('gaps');
      // 1..100 stored; 101..150 dropped by the byte cap before they were sent; 151..200 stored
      await a.writeTelemetry(telemetry(1, 100), 1);
      const r = await b.writeTelemetry(telemetry(151, 200), 2);
      expect(r.watermarks.seq).toBe(100);
      const e = await a.writeEvents(gapEvents(0, [{ id: 1, firstSeq: 101, lastSeq: 150 }]), 3);
      expect(e.watermarks).toEqual({ seq: 200, events: 1 });
      // a gap inside a batch's span (dropped after the batch was read) is covered by the span itself
      const r2 = await b.writeTelemetry(telemetry(201, 260, { holes: [230, 231, 232] }), 4);
      expect(r2.watermarks.seq).toBe(260);
    });

    it('events: the span after `after` counts, ids missing from it do not exist', async () => {
      const [a, b] = await twoReceivers('events');
      const second = gapEvents(2, [{ id: 5, firstSeq: 1, lastSeq: 10 }]);
      expect((await a.writeEvents(second, 1)).watermarks.events).toBe(0);
      const first = gapEvents(0, [{ id: 2, firstSeq: 11, lastSeq: 12 }]);
      // id 2 is here, 1 does not exist (the batch spans everything after 0); 3 and 4 do not exist either
      first.events[0]!.id = 2;
      const r = await b.writeEvents({ ...first, events: first.events }, 2);
      expect(r.watermarks.events).toBe(5);
      expect(r.watermarks.seq).toBe(12);
    });

    it('a new epoch (a new gateway database) starts its own watermark at 0', async () => {
      const [a] = await twoReceivers('epoch');
      await a.writeTelemetry(telemetry(1, 500), 1);
      const fresh = await a.writeTelemetry(telemetry(5, 20, { epoch: 'ffff0000' }), 2);
      expect(fresh.watermarks.seq).toBe(0);
      const filled = await a.writeTelemetry(telemetry(1, 4, { epoch: 'ffff0000' }), 3);
      expect(filled.watermarks.seq).toBe(20);
      expect(await a.watermarks(GW, EPOCH)).toEqual({ seq: 500, events: 0 });
    });

    it('a batch that starts at the gateway’s confirmed cursor sets the start of a database that lacks its history', async () => {
      const [a] = await twoReceivers('settled');
      // the gateway was confirmed up to 1000 by a previous receiver database; a batch from 1200 says nothing
      expect((await a.writeTelemetry(telemetry(1201, 1300), 1)).watermarks.seq).toBe(0);
      // the batch after its resend says "every seq below me was confirmed": the rest joins up
      expect((await a.writeTelemetry(telemetry(1001, 1200, { fromConfirmed: true }), 2)).watermarks.seq).toBe(1300);
    });

    it('many batches committed concurrently by two receivers in random order end at the top', async () => {
      const [a, b] = await twoReceivers('race');
      const batches: [number, number][] = [];
      for (let s = 1; s <= 3000; s += 60) batches.push([s, s + 59]);
      batches.sort(() => Math.random() - 0.5);
      // each receiver takes every other batch, both at once (as a shared subscription splits them)
      const run = (st: ReceiverStore, mine: [number, number][]) =>
        Promise.all(mine.map(([f, l]) => st.writeTelemetry(telemetry(f, l), Date.now())));
      const results = await Promise.all([
        run(
          a,
          batches.filter((_, i) => i % 2 === 0),
        ),
        run(
          b,
          batches.filter((_, i) => i % 2 === 1),
        ),
      ]);
      // whichever committed last saw everything
      expect(Math.max(...results.flat().map((r) => r.watermarks.seq))).toBe(3000);
      expect(await b.watermarks(GW, EPOCH)).toEqual({ seq: 3000, events: 0 });
      expect((await a.counts()).readings).toBe(3000);
    });
  });
}
