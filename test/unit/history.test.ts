import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventBus } from '../../gateway/core/events.js';
import type { Reading } from '../../gateway/core/reading.js';
import { downsample, History, stepFor } from '../../gateway/history/index.js';
import { Store } from '../../gateway/store/index.js';

const DAY = 86_400_000;

function reading(device: string, point: string, ts: number, value: number): Reading {
  return { device, point, value, quality: 'good', ts, mono: ts, bootId: 'b', synced: true, unit: '%' };
}

describe('downsampling', () => {
  it('keeps min and max of every bucket and never returns more buckets than asked', () => {
    const samples: [number, { min: number; max: number; sum: number; n: number }][] = [];
    for (let t = 0; t < 1000; t++)
      samples.push([t * 1000, { min: t === 500 ? -50 : t % 10, max: t === 700 ? 99 : t % 10, sum: t % 10, n: 1 }]);
    const step = stepFor(0, 1_000_000, 10, 1000);
    const d = downsample(samples, step);
    expect(d.t.length).toBeLessThanOrEqual(10);
    expect(Math.min(...d.min)).toBe(-50);
    expect(Math.max(...d.max)).toBe(99);
    expect(d.avg.every((a, i) => d.min[i]! <= a && a <= d.max[i]!)).toBe(true);
  });
});

/** Waits for the backfill to finish (a fixed sleep was too short on a busy machine). */
async function backfilled(h: History): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (h.backfilling) {
    if (Date.now() > deadline) throw new Error('the history backfill did not finish within 30 s');
    await new Promise((r) => setImmediate(r));
  }
}

describe('history rollup', () => {
  it('answers 30 days of one sensor from the rollup, backfilled from the store after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'langbiang-history-'));
    const now = Date.now();
    const events = new EventBus();
    const store = Store.open({ dataDir: dir, batchMaxReadings: 1_000_000, events });
    const rows: Reading[] = [];
    // 30 days, every 5 minutes, two sensors; one dry spell of soil-a1 twenty days ago
    for (let t = now - 30 * DAY; t < now; t += 300_000) {
      const dry = t > now - 20 * DAY && t < now - 20 * DAY + 600_000;
      rows.push(reading('soil-a1', 'moisture', t, dry ? 5 : 30 + (Math.floor(t / 300_000) % 10)));
      rows.push(reading('soil-a2', 'moisture', t, 60));
    }
    store.append(rows);
    store.flush();
    let h = new History(dir, store, events, { maxAgeMs: 90 * DAY });
    await backfilled(h); // backfill runs in chunks on setImmediate
    const q = { device: 'soil-a1', point: 'moisture', from: now - 30 * DAY, to: now, maxPoints: 500 };
    const month = h.query(q);
    expect(month.source).toBe('r15m');
    expect(month.t.length).toBeGreaterThan(400);
    expect(month.t.length).toBeLessThanOrEqual(500);
    expect(Math.min(...month.min)).toBe(5); // the ten-minute dry spell survives
    expect(Math.max(...month.max)).toBe(39);

    // live readings arrive through the event bus; after close/reopen nothing is counted twice
    store.append([reading('soil-a1', 'moisture', now + 1000, 77)]);
    store.flush();
    const day = h.query({ ...q, from: now - DAY, to: now + 60_000 });
    expect(day.source).toBe('r1m');
    expect(Math.max(...day.max)).toBe(77);
    const countBefore = day.t.length;
    h.close();
    h = new History(dir, store, events, { maxAgeMs: 90 * DAY });
    await backfilled(h);
    const again = h.query({ ...q, from: now - DAY, to: now + 60_000 });
    expect(again.t.length).toBe(countBefore);
    const bucket = again.t.findIndex((t) => t <= now + 1000 && now + 1000 < t + again.step);
    expect(again.max[bucket]).toBe(77);
    const n = (x: typeof again) => x.avg.reduce((a, b) => a + b, 0);
    expect(n(again)).toBeCloseTo(n(day), 6);

    // short ranges come from the raw readings
    const raw = h.query({ ...q, from: now - 3_600_000, to: now + 2000, maxPoints: 1000 });
    expect(raw.source).toBe('raw');
    expect(raw.t.length).toBe(13);
    h.close();
    store.close();
  });
});
