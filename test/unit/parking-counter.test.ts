import { describe, expect, it } from 'vitest';
import type { EdgeEvent, GpioBackend, WatchedInput } from '../../drivers/gpio/backend.js';
import { GpioBus } from '../../drivers/gpio/bus.js';
import { ParkingCount, type ParkingSettings } from '../../drivers/gpio/parking-counter.js';
import type { PulseInput } from '../../drivers/gpio/pulse-input.js';
import { loadProfile } from '../../hardware/profiles.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

const SETTINGS: ParkingSettings = {
  entry: 20,
  exit: 21,
  capacity: 40,
  minPulseMs: 20,
  activeLow: false,
  timezone: 'Asia/Ho_Chi_Minh',
  recalibrateAtMin: 3 * 60,
  recalibrateTo: 0,
};

/** A car over a loop for 600 ms, with contact bounce at both edges. */
function car(input: PulseInput, t: number): void {
  for (const [dt, l] of [
    [0, 1],
    [2, 0],
    [3, 1],
    [600, 0],
    [601, 1],
    [603, 0],
  ] as const)
    input.edge(l, t + dt);
}

/** Seeded random numbers (mulberry32): the same day every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('parking count', () => {
  it('a day around the market: within [0, capacity] at every read, reset at 03:00 local', () => {
    // backend t = 0 is 2026-12-05 12:00 in Đà Lạt (05:00 UTC); 26 hours of 5-minute reads
    const wall0 = Date.UTC(2026, 11, 5, 5, 0, 0);
    const c = new ParkingCount(SETTINGS, 0, wall0);
    const r = rng(7);
    let missed = 0;
    let peak = 0;
    let sawFull = false;
    let resetSeen = false;

    for (let t = 0; t < 26 * HOUR; t += 5 * MIN) {
      const localHour = (12 + t / HOUR) % 24;
      // afternoon and evening rush in, night out; some passages missed by the detectors
      const busy = localHour >= 12 && localHour < 21;
      const quiet = localHour >= 2.5 && localHour < 3.5;
      const arrivals = quiet ? 0 : busy ? Math.floor(r() * 6) : Math.floor(r() * 2);
      const departures = quiet ? 0 : localHour >= 17 || localHour < 2.5 ? Math.floor(r() * 4) : Math.floor(r() * 3);
      for (let i = 0; i < arrivals; i++) {
        if (r() < 0.05) missed++;
        else car(c.entry, t + 1000 + i * 20_000);
      }
      for (let i = 0; i < departures; i++) {
        if (r() < 0.05) missed++;
        else car(c.exit, t + 2000 + i * 20_000);
      }
      const f = c.take(t + 5 * MIN, wall0 + t + 5 * MIN);
      expect(f.occupancy).toBeGreaterThanOrEqual(0);
      expect(f.occupancy).toBeLessThanOrEqual(40);
      expect(f.freeSpaces).toBe(40 - f.occupancy);
      peak = Math.max(peak, f.occupancy);
      if (f.occupancy === 40) sawFull = true;
      // 03:00 local = 20:00 UTC: the read that spans it starts from recalibrateTo (no traffic then)
      if (wall0 + t < Date.UTC(2026, 11, 5, 20, 0) && wall0 + t + 5 * MIN >= Date.UTC(2026, 11, 5, 20, 0)) {
        expect(f.occupancy).toBe(0);
        resetSeen = true;
      }
    }
    expect(resetSeen).toBe(true);
    expect(missed).toBeGreaterThan(0);
    expect(sawFull).toBe(true); // the afternoon fills it: entries past capacity were clamped
    expect(c.corrections).toBeGreaterThan(0);
    expect(peak).toBe(40);
  });

  it('recalibrates once a day at the set local hour, not at every read after it', () => {
    const wall0 = Date.UTC(2026, 11, 5, 19, 50); // 02:50 local
    const c = new ParkingCount({ ...SETTINGS, recalibrateTo: 3 }, 0, wall0);
    for (let i = 0; i < 10; i++) car(c.entry, i * 1000);
    expect(c.take(5 * MIN, wall0 + 5 * MIN).occupancy).toBe(10); // 02:55
    // a car in at 02:58, then 03:00 passes: the count restarts from 3; the car before does not count
    car(c.entry, 8 * MIN);
    car(c.entry, 12 * MIN); // 03:02: counted after the reset
    expect(c.take(15 * MIN, wall0 + 15 * MIN).occupancy).toBe(4);
    car(c.entry, 16 * MIN);
    expect(c.take(20 * MIN, wall0 + 20 * MIN).occupancy).toBe(5); // no second reset the same day
  });

  it('after a restart the stored count comes back, unless a recalibration fell in between', () => {
    // local = UTC + 7; recalibration at 03:00 local = 20:00 UTC the day before
    const local = (d: number, h: number, m = 0) => Date.UTC(2026, 11, d, h - 7, m);
    const restored = (at: number, now: number) => {
      const c = new ParkingCount({ ...SETTINGS, recalibrateTo: 2 }, 0, now);
      c.restore(17, at, now);
      return c.occupancy;
    };
    expect(restored(local(6, 14), local(6, 14, 5))).toBe(17); // same afternoon
    expect(restored(local(6, 2, 50), local(6, 3, 10))).toBe(2); // 03:00 passed while down
    expect(restored(local(5, 22), local(6, 2))).toBe(17); // overnight, before 03:00
    expect(restored(local(5, 2), local(6, 1))).toBe(2); // yesterday's 03:00 came after the count
    expect(restored(local(4, 22), local(6, 1))).toBe(2); // two days down
    const c = new ParkingCount(SETTINGS, 0, local(6, 12));
    c.restore(99, local(6, 11), local(6, 12)); // beyond capacity: not taken
    expect(c.occupancy).toBe(0);
  });

  it('set occupancy: within 0..capacity, refused otherwise', () => {
    const c = new ParkingCount(SETTINGS, 0, Date.UTC(2026, 11, 5, 5));
    c.set(12);
    expect(c.occupancy).toBe(12);
    expect(() => c.set(41)).toThrow(/0\.\.40/);
    expect(() => c.set(-1)).toThrow(/0\.\.40/);
  });
});

class ManualBackend implements GpioBackend {
  readonly kind = 'simulated' as const;
  t = 0;
  private readonly handlers = new Map<number, (e: EdgeEvent) => void>();
  now(): number {
    return this.t;
  }
  async watch(pin: number, onEdge: (e: EdgeEvent) => void): Promise<WatchedInput> {
    this.handlers.set(pin, onEdge);
    return { pin, read: async () => 0, close: async () => {} };
  }
  async output(): Promise<never> {
    throw new Error('no outputs here');
  }
  edge(pin: number, level: 0 | 1, t: number): void {
    this.handlers.get(pin)?.({ level, t });
  }
  async close(): Promise<void> {}
}

describe('parking counter on the gpio bus', () => {
  it('counts, and takes a set occupancy command as a write', async () => {
    const backend = new ManualBackend();
    const bus = new GpioBus({
      id: 'gpio',
      backend: 'simulated',
      backendInstance: backend,
      wallNow: () => Date.UTC(2026, 11, 6, 5) + backend.t,
    });
    await bus.open();
    const profile = loadProfile('parking-counter');
    const device = {
      id: 'market-car-park',
      profile,
      pins: { entry: 20, exit: 21 },
      options: { capacity: 40, timezone: 'Asia/Ho_Chi_Minh' },
    };
    await bus.attach([device]);
    for (let i = 0; i < 3; i++) {
      backend.edge(20, 1, i * 2000);
      backend.edge(20, 0, i * 2000 + 500);
    }
    backend.t = 10_000;
    const v = Object.fromEntries((await bus.readPoints(device, profile.points)).map((x) => [x.point, x.value]));
    expect(v).toEqual({ occupancy: 3, free_spaces: 37, entries: 3, exits: 0 });
    await bus.writePoint(device, profile.points.find((p) => p.name === 'occupancy')!, 25);
    backend.t = 20_000;
    const w = Object.fromEntries((await bus.readPoints(device, profile.points)).map((x) => [x.point, x.value]));
    expect(w).toMatchObject({ occupancy: 25, free_spaces: 15 });
    await expect(bus.writePoint(device, profile.points.find((p) => p.name === 'occupancy')!, 99)).rejects.toMatchObject(
      {
        code: 'OUT_OF_RANGE',
      },
    );
    await bus.close();
  });
});
