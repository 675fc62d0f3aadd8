import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Clock } from '../../gateway/core/clock.js';
import type { BusDriver, BusHealth, DeviceBinding } from '../../gateway/core/driver.js';
import type { DeviceProfile, PointDef } from '../../gateway/core/point.js';
import type { PointValue, Reading } from '../../gateway/core/reading.js';
import { pollSlotsFor } from '../../gateway/scheduler/poll-slots.js';
import { Scheduler } from '../../gateway/scheduler/scheduler.js';

// Fake timers drive both setTimeout and Date.now, so this clock moves with them.
const clock: Clock = {
  wallNow: () => Date.now(),
  monoNow: () => Date.now() - 1_700_000_000_000,
  bootId: 'boot-1',
  isSynced: () => true,
};

function point(name: string, address: number, group?: string): PointDef {
  return {
    name,
    function: 'holding',
    address,
    type: 'u16',
    byteOrder: 'big',
    wordOrder: 'big',
    scale: 1,
    offset: 0,
    writable: false,
    unit: 'x',
    group,
  };
}

const profile: DeviceProfile = {
  name: 'test-profile',
  manufacturer: 't',
  model: 't',
  source: { title: 't' },
  maxReadRegisters: 125,
  kind: 'modbus',
  points: [point('a', 0), point('b', 1, 'slow'), point('c', 2, 'levels'), point('d', 3, 'levels')],
};

/** A bus whose reads take `delayMs` and that records how many reads overlap per device. */
class RecordingBus implements BusDriver {
  readonly id = 'bus';
  readonly type = 'test';
  reads: { device: string; points: string[]; at: number }[] = [];
  inFlight = new Map<string, number>();
  maxInFlight = 0;
  constructor(private readonly delayMs = 0) {}
  async open() {}
  async close() {}
  async writePoint() {}
  health(): BusHealth {
    return { bus: 'bus', type: 'test', open: true, reconnects: 0, queueDepth: 0, transactions: 0, devices: [] };
  }
  async readPoints(device: DeviceBinding, points: readonly PointDef[]): Promise<PointValue[]> {
    const n = (this.inFlight.get(device.id) ?? 0) + 1;
    this.inFlight.set(device.id, n);
    this.maxInFlight = Math.max(this.maxInFlight, n);
    this.reads.push({ device: device.id, points: points.map((p) => p.name), at: Date.now() });
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    this.inFlight.set(device.id, n - 1);
    return points.map((p) => ({ point: p.name, value: p.address, quality: 'good' as const }));
  }
}

describe('Scheduler', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('polls each device on its own interval without drift', async () => {
    const bus = new RecordingBus();
    const sink: Reading[][] = [];
    const s = new Scheduler(
      [
        { binding: { id: 'fast', profile }, bus, intervalMs: 1000, points: profile.points },
        { binding: { id: 'slow', profile }, bus, intervalMs: 5000, points: profile.points },
      ],
      { clock, sink: (r) => sink.push(r) },
    );
    s.start();
    await vi.advanceTimersByTimeAsync(10_000);
    await s.stop();
    const fast = bus.reads.filter((r) => r.device === 'fast').map((r) => r.at - 1_700_000_000_000);
    const slow = bus.reads.filter((r) => r.device === 'slow');
    expect(fast).toEqual([0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000]);
    expect(slow).toHaveLength(3); // 0, 5000, 10000
  });

  it('stamps readings with device, unit, time, boot and sync state', async () => {
    const bus = new RecordingBus();
    const sink: Reading[][] = [];
    const s = new Scheduler(
      [{ binding: { id: 'soil-a1', profile }, bus, intervalMs: 1000, points: profile.points.slice(0, 2) }],
      {
        clock,
        sink: (r) => sink.push(r),
      },
    );
    s.start();
    await vi.advanceTimersByTimeAsync(10);
    await s.stop();
    expect(sink[0]).toEqual([
      {
        device: 'soil-a1',
        point: 'a',
        value: 0,
        quality: 'good',
        ts: 1_700_000_000_000,
        mono: 0,
        bootId: 'boot-1',
        synced: true,
        unit: 'x',
      },
      {
        device: 'soil-a1',
        point: 'b',
        value: 1,
        quality: 'good',
        ts: 1_700_000_000_000,
        mono: 0,
        bootId: 'boot-1',
        synced: true,
        unit: 'x',
      },
    ]);
  });

  it('never lets one device have two polls in flight: a slow bus skips, it does not pile up', async () => {
    const bus = new RecordingBus(2500);
    const s = new Scheduler([{ binding: { id: 'd', profile }, bus, intervalMs: 1000, points: profile.points }], {
      clock,
      sink: () => {},
    });
    s.start();
    await vi.advanceTimersByTimeAsync(10_000);
    const stopped = s.stop(); // waits for the poll in flight, which needs the clock to move
    await vi.advanceTimersByTimeAsync(3000);
    await stopped;
    expect(bus.maxInFlight).toBe(1);
    const [stats] = s.stats();
    expect(stats!.polls).toBeGreaterThanOrEqual(3);
    expect(stats!.polls).toBeLessThanOrEqual(4);
    expect(stats!.overruns).toBeGreaterThanOrEqual(6);
  });

  it('a failing sink is reported and polling goes on', async () => {
    const bus = new RecordingBus();
    const errors: string[] = [];
    let calls = 0;
    const s = new Scheduler([{ binding: { id: 'd', profile }, bus, intervalMs: 1000, points: profile.points }], {
      clock,
      sink: () => {
        calls++;
        if (calls === 1) throw new Error('disk full');
      },
      onError: (device, err) => errors.push(`${device}: ${(err as Error).message}`),
    });
    s.start();
    await vi.advanceTimersByTimeAsync(3000);
    await s.stop();
    expect(errors).toEqual(['d: disk full']);
    expect(calls).toBe(4);
  });
});

describe('pollSlotsFor', () => {
  const bus = new RecordingBus();
  it('puts points of a group with its own interval in their own slot; groups sharing an interval share one', () => {
    const slots = pollSlotsFor(
      { id: 'dali', interval: 10_000, groupIntervals: { slow: 3_600_000, levels: 60_000 } },
      profile,
      bus,
    );
    expect(slots.map((s) => [s.intervalMs, s.points.map((p) => p.name)])).toEqual([
      [10_000, ['a']],
      [60_000, ['c', 'd']],
      [3_600_000, ['b']],
    ]);
    const merged = pollSlotsFor(
      { id: 'dali', interval: 10_000, groupIntervals: { slow: 60_000, levels: 60_000 } },
      profile,
      bus,
    );
    expect(merged.map((s) => [s.intervalMs, s.points.map((p) => p.name)])).toEqual([
      [10_000, ['a']],
      [60_000, ['b', 'c', 'd']],
    ]);
  });

  it('respects the points subset and defaults to one slot', () => {
    const slots = pollSlotsFor({ id: 'd', interval: 5000, points: ['a', 'c'] }, profile, bus);
    expect(slots).toHaveLength(1);
    expect(slots[0]!.points.map((p) => p.name)).toEqual(['a', 'c']);
    expect(slots[0]!.binding).toMatchObject({ id: 'd', profile });
  });
});
