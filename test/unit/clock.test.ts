import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type ClockStepInfo,
  ClockWatcher,
  ManualClock,
  readBootId,
  SystemClock,
  storeCorrection,
  UNSYNCED_TIME_FLOOR_MS,
} from '../../gateway/clock/index.js';
import type { Clock } from '../../gateway/core/clock.js';
import type { Reading } from '../../gateway/core/reading.js';
import { Store } from '../../gateway/store/index.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-clock-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function stamp(clock: Clock, i: number): Reading {
  return {
    device: 'd',
    point: 'p',
    value: i,
    quality: 'good',
    ts: clock.wallNow(),
    mono: clock.monoNow(),
    bootId: clock.bootId,
    synced: clock.isSynced(),
  };
}

describe('ManualClock', () => {
  it('moves wall and monotonic together, and steps the wall alone', () => {
    const c = new ManualClock({ wall: 1000, mono: 10, synced: false, bootId: 'b1' });
    c.advance(500);
    expect([c.wallNow(), c.monoNow()]).toEqual([1500, 510]);
    c.stepWall(-200);
    expect([c.wallNow(), c.monoNow()]).toEqual([1300, 510]);
    expect(c.isSynced()).toBe(false);
    c.setSynced(true);
    expect(c.isSynced()).toBe(true);
    expect(c.bootId).toBe('b1');
  });
});

describe('SystemClock', () => {
  it('never reports a time before 2020 while unsynchronised, and keeps it monotonic', () => {
    let wall = 5_000; // 1970: a Pi without RTC just booted
    let mono = 12_000;
    const c = new SystemClock({ syncProbe: () => false, wallSource: () => wall, monoSource: () => mono });
    expect(c.wallNow()).toBe(UNSYNCED_TIME_FLOOR_MS + 12_000);
    mono += 1000;
    wall += 1000;
    expect(c.wallNow()).toBe(UNSYNCED_TIME_FLOOR_MS + 13_000);
    expect(c.isSynced()).toBe(false);
  });

  it('reports a plausible unsynchronised wall time as it is', () => {
    const wall = Date.UTC(2025, 5, 1);
    const c = new SystemClock({ syncProbe: () => false, wallSource: () => wall, monoSource: () => 1 });
    expect(c.wallNow()).toBe(wall);
  });

  it('is synchronised when the probe says so (sticky), or when assumed', () => {
    let synced = false;
    let mono = 0;
    const c = new SystemClock({ syncProbe: () => synced, monoSource: () => mono });
    expect(c.isSynced()).toBe(false);
    synced = true;
    mono += 2000; // the probe is asked at most once a second
    expect(c.isSynced()).toBe(true);
    synced = false;
    mono += 2000;
    expect(c.isSynced()).toBe(true);
    expect(new SystemClock({ assumeSynced: true, syncProbe: () => false }).isSynced()).toBe(true);
  });

  it('reads the boot id from the kernel file, with a random fallback', () => {
    const f = join(dir, 'boot_id');
    writeFileSync(f, '3f1c2a9e-0000-4000-8000-000000000001\n');
    expect(readBootId(f)).toBe('3f1c2a9e-0000-4000-8000-000000000001');
    const a = readBootId(join(dir, 'missing'));
    const b = readBootId(join(dir, 'missing'));
    expect(a).toMatch(/^[0-9a-f-]{36}$/);
    expect(a).not.toBe(b);
  });

  it('has a monotonic clock that does not go backwards', () => {
    const c = new SystemClock();
    const a = c.monoNow();
    const b = c.monoNow();
    expect(b).toBeGreaterThanOrEqual(a);
    expect(Number.isInteger(a)).toBe(true);
  });
});

describe('ClockWatcher', () => {
  it('reports the step when the clock becomes synchronised, whatever time passed', () => {
    const c = new ManualClock({ wall: UNSYNCED_TIME_FLOOR_MS + 30_000, mono: 30_000, synced: false });
    const steps: ClockStepInfo[] = [];
    const w = new ClockWatcher(c, { onStep: (_ms, info) => steps.push(info) });
    expect(w.check()).toBeNull();
    c.advance(60_000);
    expect(w.check()).toBeNull(); // time passing is not a step
    c.advance(10_000);
    c.stepWall(200_000_000_000); // NTP sets the real time...
    c.setSynced(true); // ...and says so
    c.advance(5_000);
    const info = w.check();
    expect(info).toEqual({ stepMs: 200_000_000_000, reason: 'synced', synced: true, bootId: c.bootId });
    expect(steps).toEqual([info]);
    c.advance(1000);
    expect(w.check()).toBeNull();
  });

  it('reports a step larger than the threshold while unsynchronised, ignores jitter', () => {
    const c = new ManualClock({ synced: false });
    const steps: number[] = [];
    const w = new ClockWatcher(c, { onStep: (ms) => steps.push(ms), stepThresholdMs: 2000 });
    w.check();
    c.stepWall(1500);
    expect(w.check()).toBeNull();
    c.stepWall(-3_600_000);
    expect(w.check()).toMatchObject({ stepMs: -3_600_000, reason: 'stepped', synced: false });
    expect(steps).toEqual([-3_600_000]);
  });

  it('tells when the clock was already synchronised at start, with the offset', () => {
    const c = new ManualClock({ wall: 1_000_000, mono: 400, synced: true });
    const seen: number[] = [];
    const w = new ClockWatcher(c, { onStep: () => {}, onSyncedAtStart: (offset) => seen.push(offset) });
    w.check();
    expect(seen).toEqual([999_600]);
  });

  it('with the store: readings taken before sync land on their true time, not on "now"', () => {
    const trueBoot = Date.UTC(2026, 2, 1, 6, 0, 0);
    let wall = 3_000; // 1970, no RTC
    let mono = 3_000; // ms since boot
    let synced = false;
    const clock = new SystemClock({ syncProbe: () => synced, wallSource: () => wall, monoSource: () => mono });
    const store = Store.open({ dataDir: dir, batchMaxDelayMs: 60_000, clock });
    try {
      const watcher = new ClockWatcher(clock, { ...storeCorrection(store), intervalMs: 1000 });
      watcher.check();
      const taken: { mono: number }[] = [];
      for (let i = 0; i < 5; i++) {
        mono += 10_000;
        wall += 10_000;
        store.append([stamp(clock, i)]);
        taken.push({ mono });
        if (i === 2) store.flush(); // some committed, some still buffered
      }
      // NTP: the wall clock becomes the true time; the monotonic clock just keeps going.
      mono += 700;
      wall = trueBoot + mono;
      synced = true;
      mono += 2000; // the probe caches for a second
      wall += 2000;
      const info = watcher.check();
      expect(info?.reason).toBe('synced');
      store.flush();
      const rows = store.readAfter(0, 100);
      expect(rows).toHaveLength(5);
      for (const [i, r] of rows.entries()) {
        expect(r.synced).toBe(true);
        expect(r.ts).toBe(trueBoot + taken[i]!.mono);
      }
    } finally {
      store.close();
    }
  });

  it('a process started after sync re-stamps the unsynced readings of its boot from monotonic time', () => {
    const offset = Date.UTC(2026, 2, 1);
    const store = Store.open({ dataDir: dir, batchMaxDelayMs: 60_000 });
    try {
      // An earlier process of this boot stored readings before NTP synchronised.
      const early = new ManualClock({
        wall: UNSYNCED_TIME_FLOOR_MS + 5000,
        mono: 5000,
        synced: false,
        bootId: 'boot-x',
      });
      store.append([stamp(early, 1)]);
      early.advance(1000);
      store.append([stamp(early, 2)]);
      store.flush();
      // This process starts with the clock already synchronised.
      const now = new ManualClock({ wall: offset + 90_000, mono: 90_000, synced: true, bootId: 'boot-x' });
      const reports: unknown[] = [];
      const w = new ClockWatcher(
        now,
        storeCorrection(store, (e) => reports.push(e)),
      );
      w.check();
      expect(store.readAfter(0, 10).map((r) => [r.ts, r.synced])).toEqual([
        [offset + 5000, true],
        [offset + 6000, true],
      ]);
      expect(reports).toEqual([{ stepMs: 0, corrected: 2, reason: 'synced-at-start' }]);
    } finally {
      store.close();
    }
  });

  it('keeps running when a callback throws', () => {
    const c = new ManualClock({ synced: false });
    const errors: unknown[] = [];
    const w = new ClockWatcher(c, {
      onStep: () => {
        throw new Error('store closed');
      },
      onError: (e) => errors.push(e),
      intervalMs: 60_000,
    });
    w.start();
    c.setSynced(true);
    (w as unknown as { safeCheck(): void }).safeCheck();
    w.stop();
    expect(errors).toHaveLength(1);
  });
});
