import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BounceFilter,
  GpioBus,
  type LevelChange,
  resolveGpioChip,
  SimulatedGpioBackend,
  sysfsNumber,
  TrafficMeter,
} from '../../drivers/gpio/index.js';
import type { DeviceBinding } from '../../gateway/core/driver.js';
import { headerChipLabels, loadBoards } from '../../hardware/boards.js';
import { loadProfile } from '../../hardware/profiles.js';

type Edge = [level: 0 | 1, t: number];

/** A vehicle on a loop: rising at t, falling at t + onMs, each edge optionally followed by bounce toggles. */
function pulse(t: number, onMs: number, bounce: number[] = []): Edge[] {
  const edges: Edge[] = [[1, t]];
  bounce.forEach((dt, i) => {
    edges.push([i % 2 === 0 ? 0 : 1, t + dt]);
  });
  if (bounce.length % 2 === 1) edges.push([1, t + bounce[bounce.length - 1]! + 0.3]);
  edges.push([0, t + onMs]);
  bounce.forEach((dt, i) => {
    edges.push([i % 2 === 0 ? 1 : 0, t + onMs + dt]);
  });
  if (bounce.length % 2 === 1) edges.push([0, t + onMs + bounce[bounce.length - 1]! + 0.3]);
  return edges;
}

describe('bounce filter', () => {
  it('keeps every change that holds, dated at the first edge of its burst, and drops glitches', () => {
    const f = new BounceFilter(3);
    const out: LevelChange[] = [];
    const push = (l: 0 | 1, t: number) => f.push(l, t, (c) => out.push(c));
    push(1, 100); // onset
    push(0, 100.4); // bounce
    push(1, 101);
    push(0, 150); // release
    push(1, 150.5);
    push(0, 151);
    push(1, 200); // a 1 ms noise spike on an idle line
    push(0, 201);
    f.settle(300, (c) => out.push(c));
    expect(out).toEqual([
      { level: 1, t: 100 },
      { level: 0, t: 150 },
    ]);
  });
});

describe('traffic meter (timestamps, not real time)', () => {
  const feed = (m: TrafficMeter, edges: Edge[], loop: 'a' | 'b' = 'a') =>
    edges
      .sort((x, y) => x[1] - y[1])
      .forEach(([l, t]) => {
        if (loop === 'a') m.edgeA(l, t);
        else m.edgeB(l, t);
      });

  it('counts 50 vehicles/s exactly, split over reads at arbitrary times', () => {
    const m = new TrafficMeter({ minPulseMs: 3, start: 0 });
    const edges: Edge[] = [];
    for (let i = 0; i < 500; i++) edges.push(...pulse(i * 20, 12)); // 10 s at 50 veh/s: 12 ms on, 8 ms gap
    let total = 0;
    let next = 0;
    const reads = [1003.7, 2500, 2500.1, 7777, 10_050];
    const perRead: number[] = [];
    for (const at of reads) {
      while (next < edges.length && edges[next]![1] <= at) {
        m.edgeA(edges[next]![0], edges[next]![1]);
        next++;
      }
      const r = m.take(at);
      perRead.push(r.intensity);
      total += r.intensity;
    }
    expect(total).toBe(500);
    // rising edges at 0, 20, … 1000 are in the first interval (1003.7): 51 vehicles
    expect(perRead[0]).toBe(51);
    expect(perRead[2]).toBe(0); // 0.1 ms with no vehicle arriving
  });

  it('with contact bounce on every edge: never counts bounce, never merges two vehicles', () => {
    const m = new TrafficMeter({ minPulseMs: 3, start: 0 });
    const edges: Edge[] = [];
    for (let i = 0; i < 500; i++) edges.push(...pulse(i * 20, 12, [0.4, 0.9, 1.5, 2.1].slice(0, 1 + (i % 4))));
    feed(m, edges);
    const r = m.take(10_000);
    expect(r.intensity).toBe(500);
    // occupancy is measured from the first edge of each burst: 12 ms of every 20 ms
    expect(r.occupancy).toBeCloseTo(0.6, 2);
  });

  it('the trailing debounce onoff offers would merge them (why the driver does not use it)', () => {
    // lodash-style trailing debounce at 10 ms: one event per burst of edges closer than 10 ms
    const edges: Edge[] = [];
    for (let i = 0; i < 50; i++) edges.push(...pulse(i * 20, 12, [0.4]));
    edges.sort((x, y) => x[1] - y[1]);
    // it fires once the input has been quiet for 10 ms, reporting the level then
    let counted = 0;
    let last: 0 | 1 = 0;
    for (let i = 0; i < edges.length; i++) {
      const quiet = i === edges.length - 1 || edges[i + 1]![1] - edges[i]![1] >= 10;
      if (!quiet) continue;
      if (edges[i]![0] === 1 && last === 0) counted++;
      last = edges[i]![0];
    }
    expect(counted).toBeLessThan(50);
    const m = new TrafficMeter({ minPulseMs: 3, start: 0 });
    feed(m, edges);
    expect(m.take(2000).intensity).toBe(50);
  });

  it('occupancy is the fraction of the interval a vehicle stood on the loop, including one still there', () => {
    const m = new TrafficMeter({ minPulseMs: 5, start: 0 });
    feed(m, [...pulse(1000, 500), [1, 9000]]);
    const r = m.take(10_000);
    expect(r.intensity).toBe(2);
    expect(r.occupancy).toBeCloseTo((500 + 1000) / 10_000, 6);
    // the vehicle still on the loop counts in the next interval's occupancy, not again in its intensity
    m.edgeA(0, 10_400);
    const r2 = m.take(11_000);
    expect(r2.intensity).toBe(0);
    expect(r2.occupancy).toBeCloseTo(400 / 1000, 6);
  });

  it('speed from a loop pair: distance over the time between the two leading edges', () => {
    const d = 4.5;
    const m = new TrafficMeter({ minPulseMs: 5, loopDistance: d, start: 0 });
    const speeds = [36, 54, 45, 72]; // km/h
    const a: Edge[] = [];
    const b: Edge[] = [];
    speeds.forEach((kmh, i) => {
      const t = 1000 + i * 3000;
      const transit = (d / (kmh / 3.6)) * 1000;
      const on = (6.5 / (kmh / 3.6)) * 1000;
      a.push(...pulse(t, on, [0.5, 1.2]));
      b.push(...pulse(t + transit, on, [0.7]));
    });
    // B's edges delivered first: matching must not depend on delivery order
    feed(m, b, 'b');
    feed(m, a, 'a');
    const r = m.take(15_000);
    expect(r.intensity).toBe(4);
    expect(r.speedSamples).toBe(4);
    expect(r.averageSpeed).toBeCloseTo((36 + 54 + 45 + 72) / 4, 1);
    const empty = m.take(20_000);
    expect(empty).toMatchObject({ intensity: 0, averageSpeed: null, occupancy: 0 });
  });

  it('a single loop has no speed', () => {
    const m = new TrafficMeter({ minPulseMs: 5, start: 0 });
    feed(m, pulse(10, 300));
    expect(m.take(1000).averageSpeed).toBeNull();
  });
});

describe('gpio bus with the simulated backend (manual clock)', () => {
  it('stores intensity, occupancy and average speed per interval, summing to the simulated vehicles', async () => {
    let now = 0;
    const backend = new SimulatedGpioBackend({
      now: () => now,
      vehiclesPerMinute: 30,
      speed: 40,
      speedSpread: 10,
      bounceMs: 2,
      seed: 7,
    });
    const bus = new GpioBus({ id: 'road', backend: 'simulated', backendInstance: backend });
    const profile = loadProfile('loop-detector');
    const lane: DeviceBinding = {
      id: 'lane-1',
      profile,
      pins: { presence: 17, presence_b: 27 },
      options: { loopDistance: 4.5, minPulseMs: 5 },
    };
    await bus.open();
    await bus.attach([lane]);
    let vehicles = 0;
    const speeds: number[] = [];
    for (let i = 1; i <= 20; i++) {
      now = i * 60_000;
      const v = Object.fromEntries((await bus.readPoints(lane, profile.points)).map((p) => [p.point, p]));
      expect(v.intensity!.quality).toBe('good');
      vehicles += v.intensity!.value as number;
      expect(v.occupancy!.value).toBeGreaterThan(0);
      expect(v.occupancy!.value).toBeLessThan(1);
      if (v.average_speed!.value !== null) speeds.push(v.average_speed!.value as number);
    }
    const sim = backend.vehicles.get(17)!;
    const arrived = sim.filter((x) => x.arrival <= now - 10).length;
    expect(vehicles).toBe(arrived);
    expect(vehicles).toBeGreaterThan(400);
    expect(speeds.length).toBe(20);
    for (const s of speeds) {
      expect(s).toBeGreaterThan(30);
      expect(s).toBeLessThan(50);
    }
    await bus.close();
  });

  it('a loop pair without loopDistance is a decode_error naming the option, not a crash', async () => {
    const bus = new GpioBus({ id: 'road', backend: 'simulated', simulate: { seed: 1 } });
    await bus.open();
    const profile = loadProfile('loop-detector');
    const [v] = await bus.readPoints({ id: 'x', profile, pins: { presence: 5, presence_b: 6 } }, profile.points);
    expect(v).toMatchObject({ quality: 'decode_error', value: null });
    expect(v!.error).toMatch(/loopDistance/);
    await bus.close();
  });
});

describe('gpio chip base resolution against fake sysfs trees', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  function tree(chips: { base: number; ngpio: number; label: string }[]): string {
    const root = mkdtempSync(join(tmpdir(), 'langbiang-sysfs-'));
    dirs.push(root);
    writeFileSync(join(root, 'export'), '');
    writeFileSync(join(root, 'unexport'), '');
    for (const c of chips) {
      const d = join(root, `gpiochip${c.base}`);
      mkdirSync(d);
      writeFileSync(join(d, 'base'), `${c.base}\n`);
      writeFileSync(join(d, 'ngpio'), `${c.ngpio}\n`);
      writeFileSync(join(d, 'label'), `${c.label}\n`);
    }
    return root;
  }
  const labels = headerChipLabels();

  it('Pi 4 on kernel ≥ 6.6: pinctrl-bcm2711 at 512, so BCM 17 is sysfs 529', () => {
    const root = tree([
      { base: 512, ngpio: 58, label: 'pinctrl-bcm2711' },
      { base: 570, ngpio: 8, label: 'raspberrypi-exp-gpio' },
    ]);
    const chip = resolveGpioChip({ root, headerLabels: labels });
    expect(chip).toEqual({ name: 'gpiochip512', base: 512, ngpio: 58, label: 'pinctrl-bcm2711' });
    expect(sysfsNumber(chip, 17)).toBe(529);
    expect(() => sysfsNumber(chip, 58)).toThrow(/58 lines/);
  });

  it('Pi 5: the header is the RP1 chip, not the first chip', () => {
    const root = tree([
      { base: 512, ngpio: 32, label: 'gpio-brcmstb@107d508500' },
      { base: 544, ngpio: 4, label: 'gpio-brcmstb@107d508520' },
      { base: 548, ngpio: 17, label: 'gpio-brcmstb@107d517c00' },
      { base: 565, ngpio: 6, label: 'gpio-brcmstb@107d517c20' },
      { base: 571, ngpio: 54, label: 'pinctrl-rp1' },
    ]);
    const chip = resolveGpioChip({ root, headerLabels: labels });
    expect(chip.label).toBe('pinctrl-rp1');
    expect(sysfsNumber(chip, 17)).toBe(588);
    expect(sysfsNumber(resolveGpioChip({ root, headerLabels: labels, chip: 'gpiochip512' }), 3)).toBe(515);
    expect(resolveGpioChip({ root, headerLabels: labels, chip: 571 }).label).toBe('pinctrl-rp1');
  });

  it('an older kernel: base 0, BCM numbers unchanged', () => {
    const root = tree([{ base: 0, ngpio: 58, label: 'pinctrl-bcm2711' }]);
    expect(sysfsNumber(resolveGpioChip({ root, headerLabels: labels }), 17)).toBe(17);
  });

  it('no header chip, or no sysfs at all: GPIO_UNAVAILABLE naming what was found', () => {
    const root = tree([{ base: 0, ngpio: 16, label: 'some-expander' }]);
    expect(() => resolveGpioChip({ root, headerLabels: labels })).toThrow(/some-expander, base 0, 16 lines/);
    expect(() => resolveGpioChip({ root: join(root, 'nope'), headerLabels: labels })).toThrow(
      expect.objectContaining({ code: 'GPIO_UNAVAILABLE' }),
    );
  });

  it('the board files agree with the labels and line counts used here', () => {
    const boards = Object.fromEntries(loadBoards().map((b) => [b.name, b]));
    expect(boards['raspberry-pi-4']!.gpio).toMatchObject({ label: 'pinctrl-bcm2711', ngpio: 58 });
    expect(boards['raspberry-pi-5']!.gpio).toMatchObject({ label: 'pinctrl-rp1', ngpio: 54 });
    expect(boards['compute-module-4']!.gpio.label).toBe('pinctrl-bcm2711');
    expect(boards['raspberry-pi-4']!.header['11']).toBe(17);
  });
});
