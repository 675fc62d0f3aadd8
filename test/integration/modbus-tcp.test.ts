import { afterEach, describe, expect, it } from 'vitest';
import { ModbusBus } from '../../drivers/modbus/bus.js';
import { planReads } from '../../drivers/modbus/planner.js';
import { scanUnits } from '../../drivers/modbus/scan.js';
import type { DeviceBinding } from '../../gateway/core/driver.js';
import type { PointValue } from '../../gateway/core/reading.js';
import { loadProfile, loadProfiles } from '../../hardware/profiles.js';
import { ModbusSimulator, startSimulatorsForBuses } from '../../hardware/simulators/index.js';
import { freePort } from '../helpers/ports.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function byName(values: PointValue[]): Record<string, PointValue> {
  return Object.fromEntries(values.map((v) => [v.point, v]));
}

async function pollUntil(
  read: () => Promise<PointValue[]>,
  ok: (v: PointValue[]) => boolean,
  ms: number,
): Promise<PointValue[]> {
  const deadline = Date.now() + ms;
  let last = await read();
  while (!ok(last) && Date.now() < deadline) {
    await sleep(50);
    last = await read();
  }
  return last;
}

describe('Modbus TCP', () => {
  it('reads a hole-y meter profile in the fewest requests without ever touching a hole', async () => {
    const meter = loadProfile('eastron-sdm120');
    const climate = loadProfile('xy-md02');
    const sim = await ModbusSimulator.tcp({
      units: [
        { unit: 1, profile: meter },
        { unit: 7, profile: climate },
      ],
    });
    cleanups.push(() => sim.close());
    const bus = ModbusBus.tcp({ id: 'cabinet', host: '127.0.0.1', port: sim.port as number, timeoutMs: 500 });
    cleanups.push(() => bus.close());
    await bus.open();

    const device: DeviceBinding = { id: 'meter-1', unit: 1, profile: meter };
    const values = await bus.readPoints(device, meter.points);
    expect(values.map((v) => [v.point, v.quality])).toEqual(meter.points.map((p) => [p.name, 'good']));
    const v = byName(values);
    expect(v.voltage?.value as number).toBeGreaterThan(220);
    expect(v.voltage?.value as number).toBeLessThan(240);
    expect(v.frequency?.value as number).toBeCloseTo(50, 0);
    expect(v.current?.value as number).toBeGreaterThan(0);
    expect(v.active_power?.value as number).toBeGreaterThan(0);
    expect(v.active_power?.value as number).toBeLessThanOrEqual((v.apparent_power?.value as number) + 0.01);

    const stats = sim.stats(1);
    expect(stats.illegalAddressRequests).toBe(0);
    expect(stats.exceptionsByCode).toEqual({});
    // exactly the planner's optimal cover went on the wire
    expect(stats.requests).toBe(planReads(meter.points, { maxRegisters: meter.maxReadRegisters }).length);
    expect(bus.health().transactions).toBe(stats.requests);

    // energy counters only go up
    const e1 = v.import_energy?.value as number;
    await sleep(30);
    const e2 = byName(await bus.readPoints(device, meter.points)).import_energy?.value as number;
    expect(e2).toBeGreaterThanOrEqual(e1);

    // two units behind one port, as a TCP gateway serves them
    const t = byName(await bus.readPoints({ id: 'climate-7', unit: 7, profile: climate }, climate.points));
    expect(t.temperature?.quality).toBe('good');
    expect(t.humidity?.quality).toBe('good');
    expect(sim.stats(7).illegalAddressRequests).toBe(0);

    // a read that does hit a hole is reported as such, with the exception code
    const hole = await bus.readRaw(1, 'input', 2, 2).catch((e: unknown) => e);
    expect(hole).toMatchObject({ code: 'MODBUS_EXCEPTION', exceptionCode: 2 });
    expect(sim.stats(1).illegalAddressRequests).toBe(1);
  });

  it('serves every shipped Modbus profile with values inside their declared ranges', async () => {
    const profiles = [...loadProfiles().values()].filter((p) => p.kind === 'modbus');
    expect(profiles.length).toBeGreaterThanOrEqual(5);
    const units = profiles.map((profile, i) => ({ unit: i + 1, profile }));
    const sim = await ModbusSimulator.tcp({ units });
    cleanups.push(() => sim.close());
    const bus = ModbusBus.tcp({ id: 'all', host: '127.0.0.1', port: sim.port as number, timeoutMs: 1000 });
    cleanups.push(() => bus.close());
    await bus.open();
    for (const { unit, profile } of units) {
      const values = await bus.readPoints({ id: profile.name, unit, profile }, profile.points);
      const bad = values
        .filter((v) => v.quality !== 'good')
        .map((v) => `${profile.name}.${v.point}: ${v.quality} ${v.error ?? ''}`);
      expect(bad).toEqual([]);
      expect(sim.stats(unit).illegalAddressRequests).toBe(0);
    }
  });

  it('comes back by itself after the device side restarts on the same port', async () => {
    const climate = loadProfile('xy-md02');
    const port = await freePort();
    let sim = await ModbusSimulator.tcp({ port, units: [{ unit: 1, profile: climate }] });
    cleanups.push(() => sim.close());
    const busStates: boolean[] = [];
    const bus = ModbusBus.tcp(
      { id: 'cabinet', host: '127.0.0.1', port, timeoutMs: 300 },
      { reconnectBaseMs: 50, reconnectMaxMs: 300, onStateChange: (s) => busStates.push(s.open) },
    );
    cleanups.push(() => bus.close());
    await bus.open();
    const device: DeviceBinding = { id: 'climate-1', unit: 1, profile: climate };
    const read = () => bus.readPoints(device, climate.points);

    expect((await read()).every((v) => v.quality === 'good')).toBe(true);

    await sim.close();
    const down = await pollUntil(read, (vs) => vs.every((v) => v.quality === 'bus_error'), 3000);
    expect(down.map((v) => v.quality)).toEqual(climate.points.map(() => 'bus_error'));
    expect(down[0]?.error).toMatch(/cabinet (is not open|lost)/);
    expect(bus.health().open).toBe(false);
    // bus trouble is not the device's fault: it is not backed off
    expect(bus.health().devices.find((h) => h.device === device.id)?.state).toBe('ok');

    await sleep(400); // a few failed reconnect attempts while nothing listens
    sim = await ModbusSimulator.tcp({ port, units: [{ unit: 1, profile: climate }] });
    const up = await pollUntil(read, (vs) => vs.every((v) => v.quality === 'good'), 5000);
    expect(up.map((v) => v.quality)).toEqual(climate.points.map(() => 'good'));
    const h = bus.health();
    expect(h.open).toBe(true);
    expect(h.reconnects).toBeGreaterThanOrEqual(1);
    expect(busStates).toEqual([true, false, true]);
  });

  it('a dead unit times out with quality timeout, then is backed off; a silent unit is not found by scan', async () => {
    const climate = loadProfile('xy-md02');
    const group = await startSimulatorsForBuses([
      {
        id: 'cabinet',
        bus: { type: 'modbus-tcp', host: '127.0.0.1', port: 0 },
        units: [
          { unit: 1, profile: climate },
          { unit: 2, profile: climate, behaviour: 'dead' },
          { unit: 3, profile: climate, behaviour: 'slow', slowMs: 800 },
        ],
      },
    ]);
    cleanups.push(() => group.close());
    const sim = group.get('cabinet') as ModbusSimulator;
    let now = 1_000_000;
    const bus = ModbusBus.tcp(
      { id: 'cabinet', host: '127.0.0.1', port: sim.port as number, timeoutMs: 250 },
      { clock: () => now, backoff: { offlineAfter: 2, baseMs: 1000, maxMs: 60_000 } },
    );
    cleanups.push(() => bus.close());
    await bus.open();
    const dead: DeviceBinding = { id: 'climate-2', unit: 2, profile: climate };
    const q = async () => (await bus.readPoints(dead, climate.points)).map((v) => v.quality);
    expect(await q()).toEqual(['timeout', 'timeout', 'timeout', 'timeout']);
    expect(await q()).toEqual(['timeout', 'timeout', 'timeout', 'timeout']);
    expect(bus.health().devices[0]).toMatchObject({ state: 'offline', consecutiveFailures: 2, retryAt: now + 1000 });
    const asked = sim.stats(2).requests;
    expect(await q()).toEqual(['device_offline', 'device_offline', 'device_offline', 'device_offline']);
    expect(sim.stats(2).requests).toBe(asked);
    now += 1001; // backoff over: asked once more, fails, backs off twice as long
    expect(await q()).toEqual(['timeout', 'timeout', 'timeout', 'timeout']);
    expect(bus.health().devices[0]).toMatchObject({ state: 'offline', retryAt: now + 2000 });

    // a slow unit's late answer does not get mistaken for the next request's answer
    const slow = await bus.readPoints({ id: 'climate-3', unit: 3, profile: climate }, climate.points);
    expect(slow.map((v) => v.quality)).toEqual(['timeout', 'timeout', 'timeout', 'timeout']);
    await sleep(900);
    const fine = await bus.readPoints({ id: 'climate-1', unit: 1, profile: climate }, climate.points);
    expect(fine.map((v) => v.quality)).toEqual(['good', 'good', 'good', 'good']);

    const hits = await scanUnits(bus, { units: [1, 2, 3, 4], timeoutMs: 250 });
    expect(hits.map((h) => h.unit)).toEqual([1]);
  });
});
