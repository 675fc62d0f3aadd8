import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { runCli } from '../helpers/cli.js';
import { openPtyPair, type PtyPair } from '../helpers/pty.js';

const dir = mkdtempSync(join(tmpdir(), 'langbiang-cli-'));
const write = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};

describe('langbiang validate', () => {
  it('accepts a valid config with exit 0', async () => {
    const f = write(
      'ok.yaml',
      `gateway: { id: dl-gw-0001, dataDir: ${dir}/data }
buses: [{ id: rs485-1, type: modbus-rtu, port: /dev/ttyUSB0 }]
devices: [{ id: soil-a1, profile: comwintop-cwt-soil, bus: rs485-1, unit: 1, interval: 30s }]
`,
    );
    const r = await runCli(['validate', '--config', f]);
    // warnings (e.g. a baud rate other than the profile's usual one) may be printed, problems not
    for (const line of r.stderr.split('\n').filter(Boolean)) expect(line).toMatch(/^warning: /);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/valid \(1 bus, 1 device\)/);
  });

  it('prints one path-named line per problem, exit 1, no stack trace', async () => {
    const f = write(
      'bad.yaml',
      `gateway: { id: dl-gw-0001 }
buses:
  - { id: rs485-1, type: modbus-rtu, port: /dev/ttyUSB0, baudRate: fast }
devices:
  - { id: soil-a1, profile: no-such-probe, bus: rs485-1, unit: 1 }
  - { id: soil-a2, profile: comwintop-cwt-soil, bus: nowhere, unit: 300 }
`,
    );
    const r = await runCli(['validate', '--config', f]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) expect(line).toMatch(/^[\w.\-/]*[\w\]]: \S/);
    expect(r.stderr).toMatch(/buses\.0\.baudRate: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('reports YAML syntax errors with line and column', async () => {
    const f = write('syntax.yaml', 'gateway:\n  id: x\nbuses: [\n  { id: a\n');
    const r = await runCli(['validate', '--config', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/line \d+, column \d+/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('reports an unreadable file in one sentence', async () => {
    const r = await runCli(['validate', '--config', join(dir, 'missing.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/missing\.yaml/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('usage errors exit 2 without a stack trace', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('langbiang scan/read/write on real buses', () => {
  let pty: PtyPair;
  let rtuSim: ModbusSimulator;
  let tcpSim: ModbusSimulator;

  beforeAll(async () => {
    pty = await openPtyPair();
    rtuSim = await ModbusSimulator.serial({
      path: pty.b,
      baudRate: 19200,
      units: [
        { unit: 3, profile: loadProfile('xy-md02') },
        { unit: 7, profile: loadProfile('comwintop-cwt-soil') },
      ],
    });
    tcpSim = await ModbusSimulator.tcp({
      units: [
        { unit: 1, profile: loadProfile('comwintop-cwt-soil') },
        { unit: 5, profile: loadProfile('waveshare-modbus-rtu-relay-8ch') },
      ],
    });
  });
  afterAll(async () => {
    await tcpSim?.close();
    await rtuSim?.close();
    await pty?.close();
  });

  it('scan finds exactly the simulated units on a PTY bus, with progress on stderr', async () => {
    const r = await runCli(
      ['scan', '--bus', `rtu:${pty.a}?baud=19200`, '--units', '1-8', '--timeout', '150', '--json'],
      { timeoutMs: 30_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const found = JSON.parse(r.stdout) as { unit: number; profiles: string[] }[];
    expect(found.map((f) => f.unit)).toEqual([3, 7]);
    // the guess reads each profile's identify registers: the climate sensor is not taken for a soil probe
    expect(found[0]!.profiles).toContain('xy-md02');
    expect(found[0]!.profiles).not.toContain('comwintop-cwt-soil');
    expect(found[1]!.profiles).toContain('comwintop-cwt-soil');
    expect(r.stderr).toMatch(/scanned 8\/8/);
  });

  it('read prints every point of a device over TCP', async () => {
    const r = await runCli([
      'read',
      '--bus',
      `tcp:127.0.0.1:${tcpSim.port}`,
      '--unit',
      '1',
      '--profile',
      'comwintop-cwt-soil',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const points = JSON.parse(r.stdout) as { point: string; value: number; quality: string; unit: string | null }[];
    const moisture = points.find((p) => p.point === 'moisture')!;
    expect(moisture.quality).toBe('good');
    expect(moisture.unit).toBe('%');
    expect(moisture.value).toBeCloseTo(tcpSim.getValue(1, 'moisture'), 0);
    for (const name of ['temperature', 'ec', 'ph', 'nitrogen', 'phosphorus', 'potassium']) {
      expect(points.find((p) => p.point === name)?.quality).toBe('good');
    }
  });

  it('read prints a table a technician can read', async () => {
    const r = await runCli([
      'read',
      '--bus',
      `tcp:127.0.0.1:${tcpSim.port}`,
      '--unit',
      '1',
      '--profile',
      'comwintop-cwt-soil',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^point\s+value\s+unit\s+quality/m);
    expect(r.stdout).toMatch(/^moisture\s+[\d.]+\s+%\s+good/m);
  });

  it('write switches a relay and reads it back', async () => {
    expect(tcpSim.getValue(5, 'relay_2')).toBe(0);
    const r = await runCli([
      'write',
      '--bus',
      `tcp:127.0.0.1:${tcpSim.port}`,
      '--unit',
      '5',
      '--profile',
      'waveshare-modbus-rtu-relay-8ch',
      'relay_2',
      'on',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, point: 'relay_2', value: true });
    expect(tcpSim.getValue(5, 'relay_2')).toBe(1);
  });

  it('write refuses a read-only point before touching the device', async () => {
    const before = tcpSim.stats(1);
    const r = await runCli([
      'write',
      '--bus',
      `tcp:127.0.0.1:${tcpSim.port}`,
      '--unit',
      '1',
      '--profile',
      'comwintop-cwt-soil',
      'moisture',
      '50',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/read-only/);
    expect(tcpSim.stats(1)).toEqual(before);
  });

  it('a bad bus spec is one clear sentence', async () => {
    const r = await runCli(['scan', '--bus', 'serial:/dev/ttyUSB0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/rtu:.*tcp:HOST:PORT/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
