import { describe, expect, it } from 'vitest';
import type { TelemetryBatch } from '../../cloud-sync/protocol/types.js';
import { parseStoreUrl, redactUrl } from '../../cloud-sync/receiver/store.js';
import { eventsProblem, telemetryProblem } from '../../cloud-sync/receiver/validate.js';
import { countUnaccounted } from '../../cloud-sync/receiver/watermark.js';
import { LogLimiter } from '../../gateway/core/log-limiter.js';

describe('receiver database URLs', () => {
  it('takes PostgreSQL URLs, sqlite: URLs and plain paths, and refuses other schemes', () => {
    expect(parseStoreUrl('postgres://u@db/x')).toEqual({ backend: 'postgres', url: 'postgres://u@db/x' });
    expect(parseStoreUrl('postgresql://db/x').backend).toBe('postgres');
    expect(parseStoreUrl('sqlite:///var/lib/r.db')).toEqual({ backend: 'sqlite', path: '/var/lib/r.db' });
    expect(parseStoreUrl('sqlite:rel/r.db')).toEqual({ backend: 'sqlite', path: 'rel/r.db' });
    expect(parseStoreUrl('./r.db')).toEqual({ backend: 'sqlite', path: './r.db' });
    expect(() => parseStoreUrl('mysql://db/x')).toThrow(/unsupported receiver database mysql/);
    expect(() => parseStoreUrl('sqlite://')).toThrow(/names no file/);
    expect(() => parseStoreUrl('  ')).toThrow(/empty/);
  });

  it('never shows a password in what it logs', () => {
    expect(redactUrl('postgres://city:s3cret@db:5432/x')).toBe('postgres://city:***@db:5432/x');
    expect(redactUrl('postgres://city@db/x')).toBe('postgres://city@db/x');
  });
});

describe('log limiter', () => {
  it('lets a few lines through per window and reports how many it held back', () => {
    let now = 0;
    const l = new LogLimiter(2, 1000, () => now);
    expect(l.take()).toEqual({ suppressed: 0 });
    expect(l.take()).toEqual({ suppressed: 0 });
    expect(l.take()).toBeUndefined();
    expect(l.take()).toBeUndefined();
    now = 1000;
    expect(l.take()).toEqual({ suppressed: 2 });
    expect(l.take()).toEqual({ suppressed: 0 });
  });
});

describe('decoded message checks', () => {
  const batch = (): TelemetryBatch => ({
    v: 1,
    gateway: 'gw',
    epoch: 'e',
    firstSeq: 10,
    lastSeq: 11,
    readings: [
      { seq: 10, device: 'd', point: 'p', ts: 1, value: 1.5, unit: 'V', quality: 'good' },
      { seq: 11, device: 'd', point: 'p', ts: 2, value: null, unit: null, quality: 'timeout' },
    ],
  });

  it('accepts a consistent batch', () => {
    expect(telemetryProblem(batch(), 'gw')).toBeUndefined();
  });

  it('names what is wrong with an inconsistent one', () => {
    expect(telemetryProblem(batch(), 'other')).toMatch(/does not match the topic/);
    const outside = batch();
    outside.readings[1]!.seq = 12;
    expect(telemetryProblem(outside, 'gw')).toMatch(/outside the batch range/);
    const nul = batch();
    nul.readings[0]!.device = 'a\u0000b';
    expect(telemetryProblem(nul, 'gw')).toMatch(/bad device/);
    const badTs = batch();
    badTs.readings[0]!.ts = Number.NaN;
    expect(telemetryProblem(badTs, 'gw')).toMatch(/bad ts/);
    expect(telemetryProblem({ ...batch(), epoch: '' }, 'gw')).toMatch(/bad epoch/);
  });

  it('checks events too', () => {
    const ok = { v: 1, gateway: 'gw', epoch: 'e', events: [{ id: 1, kind: 'gap', ts: 5, data: { count: 3 } }] };
    expect(eventsProblem(ok, 'gw')).toBeUndefined();
    expect(eventsProblem({ ...ok, events: [{ id: 1, kind: 'gap', ts: 5, data: { s: 'x\u0000' } }] }, 'gw')).toMatch(
      /NUL/,
    );
  });
});

describe('countUnaccounted: the readings of a batch the database does not hold yet', () => {
  const table: {
    name: string;
    seqs: number[];
    stored: { upto: number; settled: number; above: [number, number][] };
    want: number;
  }[] = [
    { name: 'a new gateway', seqs: [1, 2, 3], stored: { upto: 0, settled: 0, above: [] }, want: 3 },
    { name: 'all below the watermark', seqs: [4, 5], stored: { upto: 5, settled: 0, above: [] }, want: 0 },
    { name: 'straddling the watermark', seqs: [4, 5, 6, 7], stored: { upto: 5, settled: 0, above: [] }, want: 2 },
    { name: 'below the settled point', seqs: [1, 2, 9], stored: { upto: 0, settled: 8, above: [] }, want: 1 },
    {
      name: 'inside and between ranges above a hole',
      seqs: [11, 12, 20, 21, 25, 30, 31],
      stored: {
        upto: 10,
        settled: 0,
        above: [
          [20, 21],
          [30, 40],
        ],
      },
      want: 3,
    },
    { name: 'holes in the batch', seqs: [2, 5, 9], stored: { upto: 0, settled: 0, above: [[5, 5]] }, want: 2 },
  ];
  for (const row of table)
    it(row.name, () => {
      expect(
        countUnaccounted(
          row.seqs.map((seq) => ({ seq })),
          row.stored,
        ),
      ).toBe(row.want);
    });
});
