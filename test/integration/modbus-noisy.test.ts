import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModbusBus } from '../../drivers/modbus/bus.js';
import { parseConfigText } from '../../gateway/config/index.js';
import type { DeviceBinding } from '../../gateway/core/driver.js';
import type { DeviceProfile } from '../../gateway/core/point.js';
import { loadProfile, parseProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { openPtyPair, type PtyPair } from '../helpers/pty.js';

// 5 % of replies lost at random (seeded, so the run is repeatable) on an RTU line and a TCP link.
// Block reads per poll, from the register maps: CWT-SOIL 1 (holding 0..6), XY-MD02 2 (input 1..2,
// holding 0x103..0x104), SDM120 9 (seven lone floats, 0x46..0x4F, 0x156..0x159).
const LOSS = 0.05;
const POLLS = 120;
const RETRIES = 2; // the config's default
/**
 * The bus's reply timeout in the tests that count requests. "Sent again only for a reply that was
 * lost" holds only if every reply that is not lost arrives within it; on a loaded machine a reply
 * on loopback or a PTY can take hundreds of milliseconds, and a late reply makes the bus retry
 * (rightly, from where it stands). So the timeout is far above any scheduling delay: each lost
 * reply costs this much, which is why the tests take tens of seconds.
 */
const TIMEOUT_MS = 500;
/** On the RTU line every byte also goes through socat, a third process to be scheduled. */
const RTU_TIMEOUT_MS = 1000;

let soil: DeviceProfile;
let climate: DeviceProfile;
let sdm: DeviceProfile;

beforeAll(() => {
  soil = loadProfile('comwintop-cwt-soil');
  climate = loadProfile('xy-md02');
  sdm = loadProfile('eastron-sdm120');
});

interface Tally {
  goodPolls: number;
}

/** Polls each device POLLS times, all devices at once (the bus queue serialises them). */
async function pollAll(bus: ModbusBus, devices: DeviceBinding[]): Promise<Map<string, Tally>> {
  const out = new Map<string, Tally>();
  await Promise.all(
    devices.map(async (d) => {
      const t: Tally = { goodPolls: 0 };
      out.set(d.id, t);
      for (let i = 0; i < POLLS; i++) {
        const vs = await bus.readPoints(d, d.profile.points);
        if (vs.every((v) => v.quality === 'good' && typeof v.value === 'number')) t.goodPolls++;
      }
    }),
  );
  return out;
}

function expectEnoughAndNoMore(sim: ModbusSimulator, unit: number, blocks: number): void {
  const s = sim.stats(unit);
  // what the unit saw, in every failure message: a needless request is then told from a lost one
  const seen = `unit ${unit}: ${JSON.stringify(s)}`;
  // the loss happened, at about the rate asked
  expect(s.lost, seen).toBeGreaterThan(0);
  expect(s.lost / s.requests, seen).toBeLessThan(0.1);
  // every block asked once per poll, and a request sent again only for a reply that was lost
  expect(s.requests, seen).toBeGreaterThanOrEqual(POLLS * blocks);
  expect(s.requests, seen).toBeLessThanOrEqual(POLLS * blocks + s.lost);
}

describe('noisy lines: 5 % of replies lost', () => {
  let pty: PtyPair;
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('RTU over a PTY: at least 99 % of polls good for every device, no request more than needed', async () => {
    pty = await openPtyPair();
    cleanups.push(() => pty.close());
    const sim = await ModbusSimulator.serial({
      path: pty.b,
      baudRate: 19200,
      units: [
        { unit: 1, profile: soil, lossRate: LOSS, seed: 11 },
        { unit: 2, profile: climate, lossRate: LOSS, seed: 12 },
      ],
    });
    cleanups.push(() => sim.close());
    const bus = ModbusBus.rtu({
      id: 'rs485-1',
      path: pty.a,
      baudRate: 19200,
      parity: 'none',
      stopBits: 1,
      dataBits: 8,
      timeoutMs: RTU_TIMEOUT_MS,
      retries: RETRIES,
    });
    cleanups.push(() => bus.close());
    await bus.open();
    const tally = await pollAll(bus, [
      { id: 'soil-1', unit: 1, profile: soil },
      { id: 'climate-2', unit: 2, profile: climate },
    ]);
    expect(tally.get('soil-1')?.goodPolls).toBeGreaterThanOrEqual(Math.ceil(0.99 * POLLS));
    expect(tally.get('climate-2')?.goodPolls).toBeGreaterThanOrEqual(Math.ceil(0.99 * POLLS));
    expectEnoughAndNoMore(sim, 1, 1);
    expectEnoughAndNoMore(sim, 2, 2);
    const h = bus.health();
    expect(h.retries).toBe(sim.stats(1).lost + sim.stats(2).lost);
    // a lost reply is not a sick device
    for (const d of h.devices) expect(d.state).toBe('ok');
  }, 180_000);

  it('TCP: a nine-block meter and a climate sensor keep at least 99 % of their polls', async () => {
    const sim = await ModbusSimulator.tcp({
      units: [
        { unit: 1, profile: sdm, lossRate: LOSS, seed: 21 },
        { unit: 2, profile: climate, lossRate: LOSS, seed: 22 },
      ],
    });
    cleanups.push(() => sim.close());
    const bus = ModbusBus.tcp({
      id: 'tcp-1',
      host: '127.0.0.1',
      port: sim.port as number,
      timeoutMs: TIMEOUT_MS,
      retries: RETRIES,
    });
    cleanups.push(() => bus.close());
    await bus.open();
    const tally = await pollAll(bus, [
      { id: 'meter-1', unit: 1, profile: sdm },
      { id: 'climate-2', unit: 2, profile: climate },
    ]);
    expect(tally.get('meter-1')?.goodPolls).toBeGreaterThanOrEqual(Math.ceil(0.99 * POLLS));
    expect(tally.get('climate-2')?.goodPolls).toBeGreaterThanOrEqual(Math.ceil(0.99 * POLLS));
    expectEnoughAndNoMore(sim, 1, 9);
    expectEnoughAndNoMore(sim, 2, 2);
  }, 180_000);

  it('without retries the same line loses polls (what the retries buy)', async () => {
    const sim = await ModbusSimulator.tcp({ units: [{ unit: 1, profile: sdm, lossRate: LOSS, seed: 21 }] });
    cleanups.push(() => sim.close());
    const bus = ModbusBus.tcp({ id: 'tcp-0', host: '127.0.0.1', port: sim.port as number, timeoutMs: 80 });
    cleanups.push(() => bus.close());
    await bus.open();
    const tally = await pollAll(bus, [{ id: 'meter-1', unit: 1, profile: sdm }]);
    // nine blocks at 5 % each: about a third of the polls lose something
    expect(tally.get('meter-1')?.goodPolls).toBeLessThan(0.9 * POLLS);
  }, 60_000);

  it('a state-setting write is sent again after a lost reply; a trigger write never is', async () => {
    const relay = parseProfile('test-relay', {
      manufacturer: 'Test',
      model: 'Relay',
      source: { title: 'test fixture' },
      points: [
        { name: 'relay_1', function: 'coil', address: 0, type: 'bit', writable: true },
        { name: 'reset_counter', function: 'holding', address: 5, type: 'u16', writable: true, trigger: true },
      ],
    });
    // every reply lost: the unit acts on each request it gets, the gateway never hears back
    const sim = await ModbusSimulator.tcp({ units: [{ unit: 1, profile: relay, lossRate: 1 }] });
    cleanups.push(() => sim.close());
    // the unit must have received every attempt by the time the bus gives up on the last one
    const bus = ModbusBus.tcp({
      id: 'tcp-w',
      host: '127.0.0.1',
      port: sim.port as number,
      timeoutMs: TIMEOUT_MS,
      retries: 2,
    });
    cleanups.push(() => bus.close());
    await bus.open();
    const dev: DeviceBinding = { id: 'relay-1', unit: 1, profile: relay };
    const pt = (name: string) => relay.points.find((p) => p.name === name)!;
    await expect(bus.writePoint(dev, pt('relay_1'), true)).rejects.toMatchObject({ code: 'MODBUS_TIMEOUT' });
    expect(sim.stats(1).writes).toBe(3);
    await expect(bus.writePoint(dev, pt('reset_counter'), 1)).rejects.toMatchObject({ code: 'MODBUS_TIMEOUT' });
    expect(sim.stats(1).writes).toBe(4);
  }, 30_000);

  it('the config gives every Modbus bus two retries unless told otherwise, and bounds them', () => {
    const head = 'gateway: { id: gw-1 }\ndevices: []\nbuses:\n';
    const ok = parseConfigText(
      `${head}  - { id: a, type: modbus-rtu, port: /dev/ttyUSB0 }\n  - { id: b, type: modbus-tcp, host: 10.0.0.5, retries: 0 }\n`,
      { checkFiles: false },
    );
    expect(ok.ok && ok.config.buses.map((b) => ('retries' in b ? b.retries : undefined))).toEqual([2, 0]);
    const bad = parseConfigText(`${head}  - { id: a, type: modbus-tcp, host: x, retries: 9 }\n`, { checkFiles: false });
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.problems.map((p) => p.path)).toContain('buses.0.retries');
  });
});
