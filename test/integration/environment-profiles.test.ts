import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModbusBus } from '../../drivers/modbus/bus.js';
import type { DeviceBinding } from '../../gateway/core/driver.js';
import type { DeviceProfile } from '../../gateway/core/point.js';
import { loadProfiles } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';

// The environment station's RS-485 profiles decoded two ways: by the gateway's driver (planner,
// codec, profile scale) and by a Modbus TCP client written here from the protocol specification
// (raw frames on a socket) applying each vendor's rule from its manual by hand.

/** Reads `count` registers with function 3 or 4: a Modbus TCP request built byte by byte. */
function rawRead(port: number, unit: number, fc: 3 | 4, address: number, count: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const req = Buffer.alloc(12);
    req.writeUInt16BE(0x1234, 0); // transaction id
    req.writeUInt16BE(0, 2); // protocol id
    req.writeUInt16BE(6, 4); // length: unit + PDU
    req[6] = unit;
    req[7] = fc;
    req.writeUInt16BE(address, 8);
    req.writeUInt16BE(count, 10);
    let rx = Buffer.alloc(0);
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      rx = Buffer.concat([rx, d]);
      if (rx.length < 9 || rx.length < 6 + rx.readUInt16BE(4)) return;
      s.destroy();
      if (rx.readUInt16BE(0) !== 0x1234 || rx[7] !== fc) return reject(new Error(`bad answer ${rx.toString('hex')}`));
      const n = rx[8] as number;
      resolve(Array.from({ length: n / 2 }, (_, i) => rx.readUInt16BE(9 + i * 2)));
    });
    s.write(req);
  });
}

const signed16 = (w: number) => (w > 0x7fff ? w - 0x10000 : w);

let sim: ModbusSimulator;
let bus: ModbusBus;
let profiles: ReadonlyMap<string, DeviceProfile>;

beforeAll(async () => {
  profiles = loadProfiles();
  sim = await ModbusSimulator.tcp({
    units: [
      { unit: 1, profile: profiles.get('deltaohm-pmsense')! },
      { unit: 2, profile: profiles.get('renke-rs-fs-n01')! },
      { unit: 3, profile: profiles.get('renke-rs-fx-n01')! },
      { unit: 4, profile: profiles.get('rs485-level-transmitter')! },
    ],
  });
  bus = ModbusBus.tcp({ id: 'env', host: '127.0.0.1', port: sim.port as number, timeoutMs: 500 });
  await bus.open();
});

afterAll(async () => {
  await bus?.close();
  await sim?.close();
});

async function read(unit: number, profile: string): Promise<Record<string, number>> {
  const p = profiles.get(profile)!;
  const d: DeviceBinding = { id: `${profile}-${unit}`, unit, profile: p };
  const vs = await bus.readPoints(d, p.points);
  for (const v of vs) expect(v.quality, `${profile}.${v.point}`).toBe('good');
  return Object.fromEntries(vs.map((v) => [v.point, v.value as number]));
}

describe('environment station profiles against a hand-written Modbus client', () => {
  it('Delta OHM PMsense: input registers 3..5 are PM1, PM2.5, PM10 in tenths of µg/m³', async () => {
    sim.setValue(1, 'pm25', 812.4); // a smoky day near a burning field
    const raw = await rawRead(sim.port as number, 1, 4, 3, 3);
    const mine = await read(1, 'deltaohm-pmsense');
    expect(raw[1]).toBe(8124);
    expect(mine.pm25).toBeCloseTo(812.4, 6);
    expect(mine.pm1).toBeCloseTo((raw[0] as number) / 10, 6);
    expect(mine.pm10).toBeCloseTo((raw[2] as number) / 10, 6);
    expect(mine.pm10).toBeGreaterThan(5); // plausible Đà Lạt air from the simulator
  });

  it('Renke RS-FS-N01 and RS-FX-N01: wind speed in tenths of m/s, direction sector and degrees', async () => {
    sim.setValue(2, 'wind_speed', 12.7);
    sim.setValue(3, 'wind_direction', 225);
    sim.setValue(3, 'wind_sector', 5);
    const speedRaw = await rawRead(sim.port as number, 2, 3, 0, 1);
    const dirRaw = await rawRead(sim.port as number, 3, 3, 0, 2);
    const speed = await read(2, 'renke-rs-fs-n01');
    const dir = await read(3, 'renke-rs-fx-n01');
    expect(speedRaw).toEqual([127]);
    expect(speed.wind_speed).toBeCloseTo((speedRaw[0] as number) / 10, 6);
    expect(dirRaw).toEqual([5, 225]);
    expect(dir).toEqual({ wind_sector: 5, wind_direction: 225 });
  });

  it('level transmitter: holding 0x0004 signed, one decimal place (below the sensor reads negative)', async () => {
    sim.setValue(4, 'water_level', -12.3);
    const raw = await rawRead(sim.port as number, 4, 3, 2, 5);
    const mine = await read(4, 'rs485-level-transmitter');
    expect(raw[1]).toBe(1); // decimal places, as the profile expects
    expect(signed16(raw[2] as number)).toBe(-123);
    expect(mine.water_level).toBeCloseTo(signed16(raw[2] as number) / 10 ** (raw[1] as number), 6);
    sim.setValue(4, 'water_level', 42.5);
    expect((await read(4, 'rs485-level-transmitter')).water_level).toBeCloseTo(42.5, 6);
  });
});

describe('free-spaces sign', () => {
  it('the LED display takes the number with function 06 into register 0, as its instruction says', async () => {
    const p = profiles.get('rs485-led-display-4digit')!;
    const sign = await ModbusSimulator.tcp({ units: [{ unit: 9, profile: p }] });
    const b = ModbusBus.tcp({ id: 'sign', host: '127.0.0.1', port: sign.port as number, timeoutMs: 500 });
    try {
      await b.open();
      const d: DeviceBinding = { id: 'sign-1', unit: 9, profile: p };
      await b.writePoint(d, p.points[0]!, 37);
      expect(await rawRead(sign.port as number, 9, 3, 0, 1)).toEqual([37]);
      await b.writePoint(d, p.points[0]!, -1);
      expect(await rawRead(sign.port as number, 9, 3, 0, 1)).toEqual([0xffff]);
      expect(sign.stats(9).writes).toBe(2);
    } finally {
      await b.close();
      await sign.close();
    }
  });
});
