import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModbusBus } from '../../drivers/modbus/bus.js';
import type { Clock } from '../../gateway/core/clock.js';
import type { DeviceBinding } from '../../gateway/core/driver.js';
import type { DeviceProfile } from '../../gateway/core/point.js';
import type { PointValue, Reading } from '../../gateway/core/reading.js';
import { Scheduler } from '../../gateway/scheduler/scheduler.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator, type SimUnitSpec } from '../../hardware/simulators/index.js';
import { openPtyPair, type PtyPair } from '../helpers/pty.js';

// An SDM120 of another firmware refuses its reactive-energy registers (exception 2), another
// refuses export energy in the middle of a block; an XY-MD02 beside them answers everything.
// Block counts below are worked out from the SDM120 register map, not from the planner:
// 7 lone floats (0x00, 0x06, 0x0C, 0x12, 0x18, 0x1E, 0x24), 0x46..0x4F in one block, 0x156..0x159
// in one block = 9. Without the reactive pair the 0x46 block shrinks to 0x46..0x4B: still 9.
// Without export energy (0x4A) the 0x46 block becomes 0x46..0x49 and 0x4C..0x4F: 10.
const REACTIVE = ['import_reactive_energy', 'export_reactive_energy'];
const BLOCKS_WITHOUT_REACTIVE = 9;
const BLOCKS_WITHOUT_EXPORT = 10;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const byName = (vs: PointValue[]) => Object.fromEntries(vs.map((v) => [v.point, v]));

let sdm: DeviceProfile;
let climate: DeviceProfile;

function units(): SimUnitSpec[] {
  return [
    { unit: 1, profile: sdm, refuse: REACTIVE },
    { unit: 2, profile: sdm, refuse: ['export_energy'] },
    { unit: 3, profile: climate },
  ];
}

beforeAll(() => {
  sdm = loadProfile('eastron-sdm120');
  climate = loadProfile('xy-md02');
});

interface Rig {
  sim: ModbusSimulator;
  bus: ModbusBus;
  close(): Promise<void>;
}

async function rtuRig(): Promise<Rig> {
  const pty: PtyPair = await openPtyPair();
  const sim = await ModbusSimulator.serial({ path: pty.b, baudRate: 19200, units: units() });
  const bus = ModbusBus.rtu({
    id: 'rs485-1',
    path: pty.a,
    baudRate: 19200,
    parity: 'none',
    stopBits: 1,
    dataBits: 8,
    timeoutMs: 300,
  });
  await bus.open();
  return {
    sim,
    bus,
    async close() {
      await bus.close();
      await sim.close();
      await pty.close();
    },
  };
}

async function tcpRig(): Promise<Rig> {
  const sim = await ModbusSimulator.tcp({ units: units() });
  const bus = ModbusBus.tcp({ id: 'tcp-1', host: '127.0.0.1', port: sim.port as number, timeoutMs: 300 });
  await bus.open();
  return {
    sim,
    bus,
    async close() {
      await bus.close();
      await sim.close();
    },
  };
}

describe.each([
  ['RTU over a PTY', rtuRig],
  ['TCP', tcpRig],
])('a unit that refuses some listed registers (%s)', (_name, makeRig) => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await makeRig();
  });
  afterAll(async () => {
    await rig?.close();
  });

  const meter1: DeviceBinding = { id: 'meter-1', unit: 1, profile: {} as DeviceProfile };
  const meter2: DeviceBinding = { id: 'meter-2', unit: 2, profile: {} as DeviceProfile };

  it('isolates the refused points, keeps the rest, and reports them as unsupported, not lost', async () => {
    meter1.profile = sdm;
    meter2.profile = sdm;
    const { bus, sim } = rig;
    const first = byName(await bus.readPoints(meter1, sdm.points));
    for (const name of REACTIVE) {
      expect(first[name]).toMatchObject({ value: null, quality: 'unsupported' });
      expect(first[name]?.error).toMatch(/exception 2/);
    }
    for (const p of sdm.points.filter((p) => !REACTIVE.includes(p.name))) {
      expect(first[p.name]?.quality, p.name).toBe('good');
    }
    expect(first.frequency?.value as number).toBeCloseTo(sim.getValue(1, 'frequency'), 1);
    expect(first.import_energy?.value as number).toBeCloseTo(sim.getValue(1, 'import_energy'), 0);

    const second = byName(await bus.readPoints(meter2, sdm.points));
    expect(second.export_energy?.quality).toBe('unsupported');
    expect(second.import_reactive_energy?.quality).toBe('good');
    expect(second.import_energy?.quality).toBe('good');

    const health = bus.health().devices;
    // a unit that answers is never a connection loss
    expect(health.find((h) => h.device === 'meter-1')).toMatchObject({
      state: 'ok',
      unsupported: [...REACTIVE].sort(),
    });
    expect(health.find((h) => h.device === 'meter-1')?.lastError).toBeUndefined();
    expect(health.find((h) => h.device === 'meter-2')).toMatchObject({ state: 'ok', unsupported: ['export_energy'] });
  });

  it('settles at the new optimal cover: no refused register asked again, every other point good', async () => {
    const { bus, sim } = rig;
    const before1 = { ...sim.stats(1), ex: sim.stats(1).exceptionsByCode[2] ?? 0 };
    const before2 = { ...sim.stats(2), ex: sim.stats(2).exceptionsByCode[2] ?? 0 };
    const climateDev: DeviceBinding = { id: 'climate-3', unit: 3, profile: climate };
    const polls = 5;
    for (let i = 0; i < polls; i++) {
      const [m1, m2, c] = [
        await bus.readPoints(meter1, sdm.points),
        await bus.readPoints(meter2, sdm.points),
        await bus.readPoints(climateDev, climate.points),
      ];
      expect(m1.filter((v) => v.quality !== 'good').map((v) => v.point)).toEqual(REACTIVE);
      expect(m2.filter((v) => v.quality !== 'good').map((v) => v.point)).toEqual(['export_energy']);
      expect(c.every((v) => v.quality === 'good')).toBe(true);
    }
    expect(sim.stats(1).requests - before1.requests).toBe(polls * BLOCKS_WITHOUT_REACTIVE);
    expect(sim.stats(2).requests - before2.requests).toBe(polls * BLOCKS_WITHOUT_EXPORT);
    expect(sim.stats(1).exceptionsByCode[2] ?? 0).toBe(before1.ex);
    expect(sim.stats(2).exceptionsByCode[2] ?? 0).toBe(before2.ex);
  });

  it('forgets what it learnt when the device gets another profile', async () => {
    const { bus, sim } = rig;
    const renamed: DeviceProfile = { ...sdm, name: 'eastron-sdm120-other' };
    const ex = sim.stats(1).exceptionsByCode[2] ?? 0;
    const vs = byName(await bus.readPoints({ ...meter1, profile: renamed }, sdm.points));
    expect(vs.import_reactive_energy?.quality).toBe('unsupported');
    // asked again (and refused again) under the new profile
    expect(sim.stats(1).exceptionsByCode[2] ?? 0).toBeGreaterThan(ex);
  });
});

describe('the store hears about a refused point once', () => {
  it('scheduler: one unsupported reading per refused point, good readings every poll for the rest', async () => {
    const sim = await ModbusSimulator.tcp({ units: units() });
    const bus = ModbusBus.tcp({ id: 'tcp-2', host: '127.0.0.1', port: sim.port as number, timeoutMs: 300 });
    try {
      await bus.open();
      const clock: Clock = {
        wallNow: () => Date.now(),
        monoNow: () => performance.now(),
        bootId: 'b',
        isSynced: () => true,
      };
      const stored: Reading[] = [];
      const s = new Scheduler(
        [{ binding: { id: 'meter-1', unit: 1, profile: sdm }, bus, intervalMs: 100, points: sdm.points }],
        {
          clock,
          sink: (rs) => stored.push(...rs),
        },
      );
      s.start();
      await sleep(1200);
      await s.stop();
      const polls = s.stats()[0]?.polls ?? 0;
      expect(polls).toBeGreaterThanOrEqual(5);
      for (const name of REACTIVE) {
        const rs = stored.filter((r) => r.point === name);
        expect(rs.map((r) => r.quality)).toEqual(['unsupported']);
      }
      const freq = stored.filter((r) => r.point === 'frequency');
      expect(freq.length).toBe(polls);
      expect(freq.every((r) => r.quality === 'good' && typeof r.value === 'number')).toBe(true);
    } finally {
      await bus.close();
      await sim.close();
    }
  });
});
