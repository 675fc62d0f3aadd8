import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { QUALITIES, type Reading } from '../../gateway/core/reading.js';
import { Store } from '../../gateway/store/index.js';

// Outbox.readColumnsAfter: the sync agent's fast path must see exactly what readAfter sees.
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function reading(i: number): Reading {
  const r: Reading = {
    device: `dev-${i % 3}`,
    point: ['moisture', 'firmware', 'relay_1'][i % 3]!,
    value: i % 3 === 1 ? `v1.${i}` : i % 5 === 0 ? null : i / 10,
    quality: i % 5 === 0 ? 'timeout' : 'good',
    ts: 1_764_000_000_000 + i * 1000,
    mono: i * 1000,
    bootId: 'b',
    synced: true,
  };
  if (i % 3 === 0) r.unit = '%';
  return r;
}

describe('Store.readColumnsAfter', () => {
  it('returns the readings of readAfter as columns, across holes, limits and maxSeq', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lb-cols-'));
    dirs.push(dir);
    // maxBufferedReadings 10: appending 25 at once drops the 15 oldest, a hole of seqs 6..20
    const s = Store.open({ dataDir: dir, batchMaxReadings: 100_000, batchMaxDelayMs: 60_000, maxBufferedReadings: 10 });
    try {
      s.append([1, 2, 3, 4, 5].map(reading));
      s.flush();
      s.append(Array.from({ length: 25 }, (_, k) => reading(6 + k)));
      s.flush();
      s.append(Array.from({ length: 7 }, (_, k) => reading(31 + k)));
      s.flush();

      const asColumns = (after: number, limit: number, maxSeq?: number) => {
        const c = s.readColumnsAfter(after, limit, maxSeq);
        expect(c.seqs.length).toBe(c.count);
        // typed arrays: map through a plain array
        return Array.from(c.seqs, (seq, i) => {
          const n = c.names(c.series[i]!);
          return [seq, n.device, n.point, n.unit, c.ts[i], c.values[i], QUALITIES[c.quality[i]!]];
        });
      };
      const asRows = (after: number, limit: number, maxSeq = Number.MAX_SAFE_INTEGER) =>
        s
          .readAfter(after, limit)
          .filter((r) => r.seq <= maxSeq)
          .map((r) => [r.seq, r.device, r.point, r.unit ?? null, r.ts, r.value, r.quality]);

      const all = asColumns(0, 100);
      expect(all.map((r) => r[0])).toEqual([1, 2, 3, 4, 5, ...Array.from({ length: 17 }, (_, k) => 21 + k)]);
      expect(all).toEqual(asRows(0, 100));
      expect(all.some((r) => typeof r[5] === 'string')).toBe(true);
      expect(all.some((r) => r[5] === null && r[6] === 'timeout')).toBe(true);
      expect(all.some((r) => r[3] === null)).toBe(true);
      // the columns say how the store held each number: value === scaled / 10^decimals, exactly
      const c = s.readColumnsAfter(0, 100);
      expect(c.decimals?.length).toBe(c.count);
      for (let i = 0; i < c.count; i++) {
        const v = c.values[i];
        const k = c.decimals![i]!;
        if (typeof v === 'number') {
          expect(k).toBeGreaterThanOrEqual(0);
          expect(c.scaled![i]! / 10 ** k).toBe(v);
        } else expect(k).toBe(-1);
      }
      expect(Array.from(c.decimals!)).toContain(1); // i / 10
      expect(asColumns(0, 3)).toEqual(asRows(0, 3));
      expect(asColumns(4, 4).map((r) => r[0])).toEqual([5, 21, 22, 23]);
      expect(asColumns(4, 4, 22)).toEqual(asRows(4, 4, 22));
      expect(asColumns(5, 10, 20)).toEqual([]);
      expect(asColumns(37, 10)).toEqual([]);
      expect(asColumns(0, 0)).toEqual([]);
    } finally {
      s.close();
    }
  });
});
