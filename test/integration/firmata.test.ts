import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ladderValue } from '../../drivers/firmata/bus.js';
import { FirmataBus } from '../../drivers/firmata/index.js';
import type { DeviceBinding } from '../../gateway/core/driver.js';
import type { PointValue } from '../../gateway/core/reading.js';
import { loadProfile } from '../../hardware/profiles.js';
import { FirmataEmulator, MODE } from '../../hardware/simulators/firmata-emulator.js';
import { openPtyPair, type PtyPair } from '../helpers/pty.js';

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const byName = (values: PointValue[]) => Object.fromEntries(values.map((v) => [v.point, v]));

describe('Firmata driver (johnny-five over serialport 13) against the emulator on a real PTY', () => {
  let pty: PtyPair;
  let dir: string;
  let emu: FirmataEmulator;
  let bus: FirmataBus;
  const profile = loadProfile('arduino-standardfirmata');
  const device: DeviceBinding = { id: 'node-1', profile, pins: { soil_1: 0, soil_2: 1, relay_1: 7, switch_1: 4 } };
  const points = profile.points;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'langbiang-firmata-'));
    pty = await openPtyPair({ dir });
    emu = await FirmataEmulator.start({ path: pty.b });
    bus = new FirmataBus({
      id: 'arduino',
      path: pty.a,
      samplingIntervalMs: 50,
      reportVersionTimeoutMs: 300,
      handshakeTimeoutMs: 5000,
      reconnectMs: 200,
      maxReconnectMs: 800,
      staleAfterMs: 1500,
    });
    await bus.attach([device]);
    await bus.open();
  });

  afterAll(async () => {
    await bus?.close();
    await emu?.close();
    await pty?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('completes the handshake: version, firmware name, capabilities, analog mapping', async () => {
    expect(bus.connected).toBe(true);
    expect(bus.firmware).toBe('StandardFirmata.ino 2.5');
    expect(emu.received).toEqual(
      expect.arrayContaining(['CAPABILITY_QUERY', 'ANALOG_MAPPING_QUERY', 'SAMPLING_INTERVAL 50']),
    );
    // the device's pins were set up from its profile: analog reporting, digital input, relay output
    await until('pin setup reaching the board', () => emu.isReportingAnalog(1) && emu.pinMode(7) === MODE.OUTPUT);
    expect(emu.isReportingAnalog(0)).toBe(true);
    expect(emu.isReportingAnalog(1)).toBe(true);
    expect(emu.isReportingAnalog(2)).toBe(false);
    expect(emu.pinMode(4)).toBe(MODE.INPUT);
    expect(emu.pinMode(7)).toBe(MODE.OUTPUT);
  });

  it('reads analog reports into readings, only for mapped pins', async () => {
    emu.setAnalog(0, 512);
    emu.setAnalog(1, 37);
    const values = await until('analog values 512 and 37', async () => {
      const v = byName(await bus.readPoints(device, points));
      return v.soil_1?.value === 512 && v.soil_2?.value === 37 ? v : undefined;
    });
    expect(values.soil_1).toMatchObject({ quality: 'good' });
    expect(Object.keys(values).sort()).toEqual(['relay_1', 'soil_1', 'soil_2', 'switch_1']);
    emu.setDigitalInput(4, 1);
    await until('switch_1 = 1', async () => byName(await bus.readPoints(device, points)).switch_1?.value === 1);
  });

  it('a wind vane (resistor ladder on A3) reads as one of 16 directions, resistor tolerance included', async () => {
    const vane = loadProfile('sparkfun-sen-15901-vane');
    const dev: DeviceBinding = { id: 'vane-1', profile: vane, pins: { wind_direction: 3 } };
    const read = async () => (await bus.readPoints(dev, vane.points))[0];
    // 16 kOhm (225°) and 14.12 kOhm (247.5°) are the closest pair of the ladder: 630 and 599
    for (const [raw, deg] of [
      [610, 247.5],
      [622, 225],
      [780, 0],
      [70, 112.5],
      [950, 270],
    ] as const) {
      emu.setAnalog(3, raw);
      const v = await until(`A3 = ${raw} read as ${deg}°`, async () => {
        const r = await read();
        return r?.value === deg ? r : undefined;
      });
      expect(v).toMatchObject({ quality: 'good' });
    }
    // every step of the ladder, 2 % off its nominal reading, still gives its own direction
    const steps = vane.points[0]?.ladder ?? [];
    expect(steps).toHaveLength(16);
    for (const s of steps) {
      expect(ladderValue(steps, Math.round(s.raw * 1.02))).toBe(s.value);
      expect(ladderValue(steps, Math.round(s.raw * 0.98))).toBe(s.value);
    }
  });

  it('writes a relay: the emulator records the write, and the read-back comes from PIN_STATE_QUERY', async () => {
    const relay = points.find((p) => p.name === 'relay_1')!;
    await bus.writePoint(device, relay, true);
    await until('the write reaching the board', () => emu.writes.some((w) => w.pin === 7 && w.value === 1));
    const [back] = await bus.readPoints(device, [relay]);
    expect(back).toEqual({ point: 'relay_1', value: 1, quality: 'good' });
    expect(emu.received).toContain('PIN_STATE_QUERY 7');
    await expect(bus.writePoint(device, points.find((p) => p.name === 'soil_1')!, 1)).rejects.toMatchObject({
      code: 'NOT_WRITABLE',
    });
  });

  it('board lost (emulator and PTY gone) → bus_error readings, then reconnects and re-applies the relay when it returns', async () => {
    await emu.close();
    await pty.close();
    const down = await until('bus_error after the board is lost', async () => {
      const v = await bus.readPoints(device, points);
      return v.length > 0 && v.every((x) => x.quality === 'bus_error') ? v : undefined;
    });
    expect(down[0]!.error).toBeTruthy();
    expect(bus.health().open).toBe(false);

    // the board comes back on the same device name (USB replugged)
    pty = await openPtyPair({ dir });
    emu = await FirmataEmulator.start({ path: pty.b });
    emu.setAnalog(0, 700);
    const back = await until(
      'readings after the reconnect',
      async () => {
        const v = byName(await bus.readPoints(device, points));
        return v.soil_1?.value === 700 ? v : undefined;
      },
      20_000,
    );
    expect(back.soil_1!.quality).toBe('good');
    expect(bus.health().reconnects).toBeGreaterThanOrEqual(1);
    // the Arduino reset on reconnect; the last commanded output is applied again
    await until('relay re-applied', () => emu.writes.some((w) => w.pin === 7 && w.value === 1));
    expect(emu.pinValue(7)).toBe(1);
  }, 35_000);
});
