import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModbusBus } from '../../drivers/modbus/bus.js';
import { scanUnits } from '../../drivers/modbus/scan.js';
import type { DeviceBinding } from '../../gateway/core/driver.js';
import type { DeviceProfile } from '../../gateway/core/point.js';
import type { PointValue } from '../../gateway/core/reading.js';
import { loadProfile, parseProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { openPtyPair, type PtyPair } from '../helpers/pty.js';

// A small cabinet module: two relays (coils), a DALI broadcast level and a control word whose
// bits are separate points (so a bit write must keep its neighbours).
const cabinet: DeviceProfile = parseProfile('test-cabinet', {
  manufacturer: 'Test',
  model: 'Cabinet I/O',
  source: { title: 'test fixture' },
  points: [
    { name: 'relay_1', function: 'coil', address: 0, type: 'bit', writable: true },
    { name: 'relay_2', function: 'coil', address: 1, type: 'bit', writable: true },
    { name: 'brightness', function: 'holding', address: 10, type: 'u16', writable: true, min: 0, max: 254 },
    { name: 'auto_mode', function: 'holding', address: 20, type: 'bit', bit: 0, writable: true },
    { name: 'night_mode', function: 'holding', address: 20, type: 'bit', bit: 3, writable: true },
  ],
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let pty: PtyPair;
let sim: ModbusSimulator;
let bus: ModbusBus;
let climate: DeviceProfile;
let soil: DeviceProfile;

const dev = (id: string, unit: number, profile: DeviceProfile): DeviceBinding => ({ id, unit, profile });
let healthy: DeviceBinding;
let deadOne: DeviceBinding;
let refuser: DeviceBinding;
let flaky: DeviceBinding;
let cab: DeviceBinding;

beforeAll(async () => {
  pty = await openPtyPair();
  climate = loadProfile('xy-md02');
  soil = loadProfile('comwintop-cwt-soil');
  sim = await ModbusSimulator.serial({
    path: pty.b,
    baudRate: 9600,
    units: [
      { unit: 1, profile: climate },
      { unit: 2, profile: climate },
      { unit: 3, profile: soil },
      { unit: 4, profile: climate },
      { unit: 5, profile: cabinet },
    ],
  });
  healthy = dev('climate-1', 1, climate);
  deadOne = dev('climate-2', 2, climate);
  refuser = dev('soil-3', 3, soil);
  flaky = dev('climate-4', 4, climate);
  cab = dev('cabinet-5', 5, cabinet);
  bus = ModbusBus.rtu(
    // generous timeout: answers must never miss it on a loaded machine; the misbehaving units pay it
    { id: 'rs485-1', path: pty.a, baudRate: 9600, parity: 'none', stopBits: 1, dataBits: 8, timeoutMs: 150 },
    { backoff: { offlineAfter: 3, baseMs: 500, maxMs: 2000 } },
  );
  await bus.open();
});

afterAll(async () => {
  await bus?.close();
  await sim?.close();
  await pty?.close();
});

function byName(values: PointValue[]): Record<string, PointValue> {
  return Object.fromEntries(values.map((v) => [v.point, v]));
}

describe('Modbus RTU over a PTY', () => {
  it('reads every point of healthy units with good quality and plausible values', async () => {
    const c = byName(await bus.readPoints(healthy, climate.points));
    expect(c.temperature?.quality).toBe('good');
    expect(c.temperature?.value as number).toBeGreaterThanOrEqual(13.5);
    expect(c.temperature?.value as number).toBeLessThanOrEqual(26.5);
    expect(c.humidity?.quality).toBe('good');
    expect(c.humidity?.value as number).toBeGreaterThanOrEqual(60);
    expect(c.humidity?.value as number).toBeLessThanOrEqual(96);
    expect(c.temperature?.value).toBeCloseTo(sim.getValue(1, 'temperature'), 0);

    const s = await bus.readPoints(refuser, soil.points);
    expect(s.map((v) => v.quality)).toEqual(soil.points.map(() => 'good'));
    const moisture = byName(s).moisture?.value as number;
    expect(moisture).toBeGreaterThanOrEqual(25);
    expect(moisture).toBeLessThanOrEqual(45);
    // the planner never asked for a hole
    expect(sim.stats(1).illegalAddressRequests).toBe(0);
    expect(sim.stats(3).illegalAddressRequests).toBe(0);
  });

  it('keeps the healthy unit polled while others are dead, refusing or dropping frames', async () => {
    const devices = [healthy, deadOne, refuser, flaky];
    // the healthy unit polls its fast group (one block), the others everything they have
    const pointsOf = (d: DeviceBinding) =>
      d === healthy ? climate.points.filter((p) => p.function === 'input') : d.profile.points;

    async function window(ms: number) {
      const results = new Map<string, PointValue[][]>(devices.map((d) => [d.id, []]));
      let running = true;
      const loops = devices.map(async (d) => {
        while (running) {
          results.get(d.id)?.push(await bus.readPoints(d, pointsOf(d)));
          await sleep(300);
        }
      });
      await sleep(ms);
      running = false;
      await Promise.all(loops);
      return results;
    }

    const allGood = (polls: PointValue[][]) => polls.filter((p) => p.every((v) => v.quality === 'good')).length;

    const before = await window(3000);
    const baseline = allGood(before.get(healthy.id) ?? []);
    expect(baseline).toBeGreaterThanOrEqual(5);
    for (const d of devices) expect(allGood(before.get(d.id) ?? [])).toBe((before.get(d.id) ?? []).length);

    sim.setBehaviour(2, 'dead');
    sim.setBehaviour(3, 'exception');
    sim.setBehaviour(4, 'drop');
    const deadRequestsBefore = sim.stats(2).requests;
    const during = await window(3000);

    const healthyGood = allGood(during.get(healthy.id) ?? []);
    expect(healthyGood).toBe((during.get(healthy.id) ?? []).length);
    expect(healthyGood).toBeGreaterThanOrEqual(Math.floor(baseline * 0.7));

    // dead: a few timeouts, then backed off: most polls never touch the bus
    const deadPolls = during.get(deadOne.id) ?? [];
    const deadQualities = deadPolls.map((p) => p[0]?.quality);
    expect(deadQualities.slice(0, 3)).toEqual(['timeout', 'timeout', 'timeout']);
    expect(deadQualities).toContain('device_offline');
    const deadRequests = sim.stats(2).requests - deadRequestsBefore;
    // one request per poll that was let through (its first block timed out, the rest skipped),
    // none for the polls answered device_offline
    expect(deadRequests).toBe(deadQualities.filter((q) => q !== 'device_offline').length);
    expect(deadQualities.filter((q) => q === 'device_offline').length).toBeGreaterThanOrEqual(3);
    expect(deadRequests).toBeLessThanOrEqual(7);
    const deadHealth = bus.health().devices.find((h) => h.device === deadOne.id);
    expect(deadHealth?.state).toBe('offline');
    expect(deadHealth?.retryAt).toBeGreaterThan(Date.now() - 1000);

    // refusing: its points come back as an exception with its code, never backed off. On a
    // loaded machine an answer can arrive after the 150 ms timeout: that one is a timeout, rightly
    // (the bus cannot tell a late answer from a lost one), but never device_offline, and most
    // answers are in time.
    const refusals = (during.get(refuser.id) ?? []).flat();
    expect(refusals.length).toBeGreaterThan(0);
    const exceptions = refusals.filter((v) => v.quality === 'exception');
    expect(exceptions.length).toBeGreaterThanOrEqual(refusals.length / 2);
    for (const v of refusals) {
      expect(['exception', 'timeout']).toContain(v.quality);
      expect(v.value).toBeNull();
    }
    for (const v of exceptions) expect(v.error).toContain('exception 4');
    expect(bus.health().devices.find((h) => h.device === refuser.id)?.state).toBe('degraded');

    // dropping: some good, some garbled (crc_error), some lost (timeout); never silently missing
    const flakyQualities = new Set((during.get(flaky.id) ?? []).flat().map((v) => v.quality));
    expect(flakyQualities.has('good')).toBe(true);
    expect(flakyQualities.has('crc_error')).toBe(true);
    expect(flakyQualities.has('timeout')).toBe(true);
    expect(bus.health().devices.find((h) => h.device === flaky.id)?.state).not.toBe('offline');

    // a unit that comes back is read again after its backoff, and a success resets it
    sim.setBehaviour(2, 'normal');
    sim.setBehaviour(3, 'normal');
    sim.setBehaviour(4, 'normal');
    const deadline = Date.now() + 8000;
    let back: PointValue[] = [];
    while (Date.now() < deadline) {
      back = await bus.readPoints(deadOne, climate.points);
      if (back.every((v) => v.quality === 'good')) break;
      await sleep(100);
    }
    expect(back.map((v) => v.quality)).toEqual(['good', 'good', 'good', 'good']);
    expect(bus.health().devices.find((h) => h.device === deadOne.id)?.state).toBe('ok');
  }, 20_000);

  it('writes a relay coil, a DALI level and a bit field, and reads them back', async () => {
    const pts = Object.fromEntries(cabinet.points.map((p) => [p.name, p]));
    await bus.writePoint(cab, pts.relay_2!, true);
    await bus.writePoint(cab, pts.brightness!, 128);
    sim.setValue(5, 'auto_mode', 1);
    await bus.writePoint(cab, pts.night_mode!, 1);

    expect(sim.getValue(5, 'relay_2')).toBe(1);
    expect(sim.getValue(5, 'relay_1')).toBe(0);
    expect(sim.getValue(5, 'brightness')).toBe(128);

    const read = byName(await bus.readPoints(cab, cabinet.points));
    expect(read.relay_1).toMatchObject({ value: 0, quality: 'good' });
    expect(read.relay_2).toMatchObject({ value: 1, quality: 'good' });
    expect(read.brightness).toMatchObject({ value: 128, quality: 'good' });
    // read-modify-write kept bit 0 when setting bit 3
    expect(read.auto_mode).toMatchObject({ value: 1, quality: 'good' });
    expect(read.night_mode).toMatchObject({ value: 1, quality: 'good' });

    await bus.writePoint(cab, pts.relay_2!, false);
    expect(byName(await bus.readPoints(cab, [pts.relay_2!])).relay_2?.value).toBe(0);

    // refused before the bus: out of range, and a read-only point
    await expect(bus.writePoint(cab, pts.brightness!, 300)).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
    await expect(
      bus.writePoint(healthy, climate.points.find((p) => p.name === 'temperature')!, 20),
    ).rejects.toMatchObject({
      code: 'NOT_WRITABLE',
    });
    // a device refusing a write: the rejection carries the Modbus exception
    sim.setBehaviour(5, 'exception');
    await expect(bus.writePoint(cab, pts.brightness!, 10)).rejects.toMatchObject({
      code: 'MODBUS_EXCEPTION',
      exceptionCode: 4,
    });
    sim.setBehaviour(5, 'normal');
  });

  it('scan finds exactly the units that are on the bus', async () => {
    sim.setBehaviour(2, 'dead');
    sim.setBehaviour(3, 'exception');
    const progress: [number, boolean][] = [];
    const hits = await scanUnits(bus, {
      units: [1, 2, 3, 4, 5, 6, 7, 8],
      timeoutMs: 200,
      onProgress: (unit, found) => progress.push([unit, found]),
    });
    expect(hits.map((h) => h.unit)).toEqual([1, 3, 4, 5]);
    // XY-MD02 has nothing at holding 0: it answers "illegal data address", which still proves it is there
    expect(hits.find((h) => h.unit === 1)?.answeredWith).toContain('exception 2');
    expect(hits.find((h) => h.unit === 3)?.exceptionCode).toBe(4);
    expect(progress.map(([u]) => u)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(progress.filter(([, f]) => f).map(([u]) => u)).toEqual([1, 3, 4, 5]);
    sim.setBehaviour(2, 'normal');
    sim.setBehaviour(3, 'normal');
  });
});

describe('Modbus RTU when the adapter goes away', () => {
  it('marks the bus closed, fails reads as bus_error, and reopens when the port is back', async () => {
    const climate = loadProfile('xy-md02');
    const dir = mkdtempSync(join(tmpdir(), 'langbiang-unplug-'));
    let line = await openPtyPair({ dir });
    let sim = await ModbusSimulator.serial({ path: line.b, units: [{ unit: 1, profile: climate }] });
    const states: boolean[] = [];
    const rtu = ModbusBus.rtu(
      { id: 'usb0', path: line.a, baudRate: 9600, parity: 'none', stopBits: 1, dataBits: 8, timeoutMs: 300 },
      { reconnectBaseMs: 50, reconnectMaxMs: 200, onStateChange: (s) => states.push(s.open) },
    );
    const device: DeviceBinding = { id: 'climate-1', unit: 1, profile: climate };
    const qualities = async () => (await rtu.readPoints(device, climate.points)).map((v) => v.quality);
    try {
      await rtu.open();
      expect(await qualities()).toEqual(['good', 'good', 'good', 'good']);

      // unplug: the whole line disappears
      await sim.close();
      await line.close();
      let q = await qualities();
      for (let i = 0; i < 60 && !(q.every((x) => x === 'bus_error') && !rtu.health().open); i++) {
        await sleep(50);
        q = await qualities();
      }
      expect(q).toEqual(['bus_error', 'bus_error', 'bus_error', 'bus_error']);
      expect(rtu.health().open).toBe(false);

      // plug back in: same device path, the bus reopens by itself
      line = await openPtyPair({ dir });
      sim = await ModbusSimulator.serial({ path: line.b, units: [{ unit: 1, profile: climate }] });
      for (let i = 0; i < 100 && !q.every((x) => x === 'good'); i++) {
        await sleep(50);
        q = await qualities();
      }
      expect(q).toEqual(['good', 'good', 'good', 'good']);
      expect(rtu.health().reconnects).toBeGreaterThanOrEqual(1);
      expect(states).toEqual([true, false, true]);
    } finally {
      await rtu.close();
      await sim.close();
      await line.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
