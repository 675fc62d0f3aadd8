import { describe, expect, it } from 'vitest';
import type { EdgeEvent, GpioBackend, WatchedInput } from '../../drivers/gpio/backend.js';
import { GpioBus } from '../../drivers/gpio/bus.js';
import { type PulseInput, WeatherMeter, type WeatherMeterSettings } from '../../drivers/gpio/weather-meter.js';
import { loadProfile } from '../../hardware/profiles.js';

// Pulse trains with known answers. Times are on the GPIO backend's clock (ms); the wall clock is
// the backend clock plus a fixed offset. Bounce: every closing and opening edge of a reed switch
// comes with extra edges within a millisecond, which a plain edge counter would count.

const SETTINGS: WeatherMeterSettings = {
  rain: 5,
  wind: 6,
  minPulseMs: 2,
  activeLow: true,
  timezone: 'Asia/Ho_Chi_Minh',
  mmPerTip: 0.2794,
  kmhPerHz: 2.4,
};

/** One closure of `closedMs` at `t`, bouncing 3 times at each edge (0.3 ms apart). */
function closure(input: PulseInput, t: number, closedMs: number, counter?: { rising: number }): void {
  const bounce = (level: 0 | 1, at: number) => {
    const other = level === 1 ? 0 : 1;
    for (const [i, l] of [level, other, level, other, level].entries()) {
      if (l === 1 && counter) counter.rising++;
      input.edge(l as 0 | 1, at + i * 0.3);
    }
  };
  bounce(1, t);
  bounce(0, t + closedMs);
}

describe('weather meter: rain gauge', () => {
  it('counts each bouncing tip once: 0.2794 mm per tip, rate per hour of the interval', () => {
    const m = new WeatherMeter(SETTINGS, 0);
    const rising = { rising: 0 };
    for (let i = 0; i < 10; i++) closure(m.rain as PulseInput, 1000 + i * 5000, 80, rising);
    const f = m.take(60_000, Date.UTC(2026, 5, 1, 3, 0, 0));
    expect(rising.rising).toBe(50); // what a counter without the filter would have said: 5 per tip
    expect(f.precipitation).toBeCloseTo(2.794, 6);
    expect(f.rainRate).toBeCloseTo(2.794 * 60, 3); // 10 tips in one minute
    expect(f.rainLastHour).toBeCloseTo(2.794, 6);
    expect(f.rainToday).toBeCloseTo(2.794, 6);
    // the next interval has no rain; the hour and the day keep what fell
    const g = m.take(120_000, Date.UTC(2026, 5, 1, 3, 1, 0));
    expect(g).toMatchObject({ precipitation: 0, rainRate: 0 });
    expect(g.rainLastHour).toBeCloseTo(2.794, 6);
    expect(g.rainToday).toBeCloseTo(2.794, 6);
  });

  it('"today" starts at local midnight in Asia/Ho_Chi_Minh (17:00 UTC), the last hour spans it', () => {
    // backend t = 0 is 2026-12-05 16:58:00 UTC = 23:58 in Đà Lạt
    const wall0 = Date.UTC(2026, 11, 5, 16, 58, 0);
    const m = new WeatherMeter(SETTINGS, 0);
    const rain = m.rain as PulseInput;
    for (const t of [10_000, 40_000, 70_000]) closure(rain, t, 60); // 23:58:10, :40, 23:59:10
    const before = m.take(90_000, wall0 + 90_000); // 23:59:30
    expect(before.rainToday).toBeCloseTo(3 * 0.2794, 6);
    for (const t of [125_000, 150_000]) closure(rain, t, 60); // 00:00:05, 00:00:30
    const after = m.take(180_000, wall0 + 180_000); // 00:01:00
    expect(after.precipitation).toBeCloseTo(2 * 0.2794, 6);
    expect(after.rainToday).toBeCloseTo(2 * 0.2794, 6);
    expect(after.rainLastHour).toBeCloseTo(5 * 0.2794, 6);
    // a tip at 23:59:59.9 confirmed only after midnight still counts for the day it fell on
    const m2 = new WeatherMeter(SETTINGS, 0);
    closure(m2.rain as PulseInput, 119_900, 60); // 23:59:59.9
    expect(m2.take(125_000, wall0 + 125_000).rainToday).toBe(0);
  });

  it('a dry night: rain_today drops to zero at midnight with no tip after it; the hour slides', () => {
    const wall0 = Date.UTC(2026, 11, 5, 16, 0, 0); // 23:00 local
    const m = new WeatherMeter(SETTINGS, 0);
    closure(m.rain as PulseInput, 60_000, 60); // 23:01
    closure(m.rain as PulseInput, 30 * 60_000, 60); // 23:30
    const late = m.take(45 * 60_000, wall0 + 45 * 60_000); // 23:45
    expect(late.rainToday).toBeCloseTo(2 * 0.2794, 6);
    expect(late.rainLastHour).toBeCloseTo(2 * 0.2794, 6);
    const next = m.take(65 * 60_000, wall0 + 65 * 60_000); // 00:05
    expect(next.rainToday).toBe(0);
    expect(next.rainLastHour).toBeCloseTo(0.2794, 6); // 23:01 has left the hour, 23:30 has not
  });
});

describe('weather meter: anemometer', () => {
  it('mean speed over the interval and the highest 3-second gust, through bounce', () => {
    const m = new WeatherMeter(SETTINGS, 0);
    const wind = m.wind as PulseInput;
    // 7 s at 2 Hz (14 closures), then 3 s at 10 Hz (30 closures), each closure half the period
    for (let i = 0; i < 14; i++) closure(wind, i * 500, 200);
    for (let i = 0; i < 30; i++) closure(wind, 7000 + i * 100, 40);
    const f = m.take(10_000, Date.UTC(2026, 5, 1));
    expect(f.windSpeed).toBeCloseTo((44 / 10) * 2.4, 6); // 10.56 km/h
    expect(f.windGust).toBeCloseTo(10 * 2.4, 6); // 24 km/h over the last 3 s
    // calm: no closures
    expect(m.take(20_000, Date.UTC(2026, 5, 1, 0, 0, 10))).toMatchObject({ windSpeed: 0, windGust: 0 });
  });
});

/** A GPIO backend driven by the test (the real one needs a Pi's GPIO chip), same interface. */
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

describe('weather meter on the gpio bus', () => {
  it('serves a sen-15901 device by its rain and wind pins', async () => {
    const backend = new ManualBackend();
    const wall0 = Date.UTC(2026, 11, 6, 1, 0, 0);
    const bus = new GpioBus({
      id: 'gpio',
      backend: 'simulated',
      backendInstance: backend,
      wallNow: () => wall0 + backend.t,
    });
    await bus.open();
    const profile = loadProfile('sparkfun-sen-15901');
    const device = { id: 'weather-1', profile, pins: { rain: 5, wind: 6 }, options: { timezone: 'Asia/Ho_Chi_Minh' } };
    await bus.attach([device]);
    for (let i = 0; i < 4; i++) {
      backend.edge(5, 1, 1000 + i * 1000);
      backend.edge(5, 0, 1100 + i * 1000);
    }
    for (let i = 0; i < 20; i++) {
      backend.edge(6, 1, i * 500);
      backend.edge(6, 0, i * 500 + 100);
    }
    backend.t = 10_000;
    const values = Object.fromEntries((await bus.readPoints(device, profile.points)).map((v) => [v.point, v]));
    expect(values.precipitation).toMatchObject({ quality: 'good' });
    expect(values.precipitation?.value as number).toBeCloseTo(4 * 0.2794, 6);
    expect(values.wind_speed?.value as number).toBeCloseTo(2 * 2.4, 6);
    expect(values.rain_today?.value as number).toBeCloseTo(4 * 0.2794, 6);
    await bus.close();
  });
});
