import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { openPtyPair, type PtyPair } from '../helpers/pty.js';

interface Health {
  readings: number;
  lastSeq: number;
  buses: { bus: string; open: boolean; devices: { device: string; state: string }[] }[];
}

async function health(port: number): Promise<Health> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  return (await res.json()) as Health;
}

function csvRows(text: string): string[][] {
  return text
    .trim()
    .split('\n')
    .map((l) => l.split(','));
}

describe('the gateway polling real buses (RTU over a PTY and TCP) into SQLite', () => {
  let pty: PtyPair;
  let rtu: ModbusSimulator;
  let tcp: ModbusSimulator;
  let dir: string;
  let configFile: string;
  let httpPort: number;
  let gw: RunningCli | null = null;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'langbiang-gw-'));
    pty = await openPtyPair();
    rtu = await ModbusSimulator.serial({
      path: pty.b,
      baudRate: 19200,
      units: [
        { unit: 1, profile: loadProfile('comwintop-cwt-soil') },
        { unit: 2, profile: loadProfile('xy-md02') },
        { unit: 9, profile: loadProfile('xy-md02'), behaviour: 'dead' },
      ],
    });
    tcp = await ModbusSimulator.tcp({ units: [{ unit: 4, profile: loadProfile('eastron-sdm120') }] });
    httpPort = await freePort();
    configFile = join(dir, 'gateway.yaml');
    writeFileSync(
      configFile,
      `gateway: { id: dl-gw-test, name: "Nhà kính 3", dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: rs485-1, type: modbus-rtu, port: ${pty.a}, baudRate: 19200, timeout: 150ms }
  - { id: cabinet, type: modbus-tcp, host: 127.0.0.1, port: ${tcp.port}, timeout: 500ms }
devices:
  - { id: soil-a1, profile: comwintop-cwt-soil, bus: rs485-1, unit: 1, interval: 300ms }
  - { id: climate-1, profile: xy-md02, bus: rs485-1, unit: 2, interval: 300ms }
  - { id: climate-dead, profile: xy-md02, bus: rs485-1, unit: 9, interval: 300ms }
  - { id: meter-1, profile: eastron-sdm120, bus: cabinet, unit: 4, interval: 300ms }
storage: { batchMaxDelay: 200ms }
panel: { port: ${httpPort}, host: 127.0.0.1 }
`,
    );
  });

  afterAll(async () => {
    gw?.child.kill('SIGKILL');
    await tcp?.close();
    await rtu?.close();
    await pty?.close();
  });

  it('stores readings from every healthy device, flags the dead one, and exports the DESIGN columns', async () => {
    gw = startCli(['start', '--config', configFile]);
    await gw.waitFor('polling started');
    const h = await waitUntil(
      async () => {
        const x = await health(httpPort);
        const states = Object.fromEntries(x.buses.flatMap((b) => b.devices.map((d) => [d.device, d.state])));
        return x.readings > 60 && states['climate-dead'] === 'offline' ? x : undefined;
      },
      20_000,
      'readings and the dead device going offline',
    );
    const states = Object.fromEntries(h.buses.flatMap((b) => b.devices.map((d) => [d.device, d.state])));
    expect(states).toMatchObject({ 'soil-a1': 'ok', 'climate-1': 'ok', 'meter-1': 'ok', 'climate-dead': 'offline' });

    // every other route is closed without a session
    const api = await fetch(`http://127.0.0.1:${httpPort}/api/devices`);
    expect(api.status).toBe(401);

    const status = await runCli(['status', '--url', `http://127.0.0.1:${httpPort}`]);
    expect(status.stdout).toMatch(/gateway dl-gw-test/);
    expect(status.stdout).toMatch(/climate-dead\s+offline/);
    expect(status.code).toBe(3); // something is unhealthy

    const exp = await runCli(['export', '--data-dir', join(dir, 'data'), '--format', 'csv']);
    expect(exp.code, exp.stderr).toBe(0);
    const rows = csvRows(exp.stdout);
    expect(rows[0]).toEqual(['seq', 'device', 'point', 'ts', 'value', 'unit', 'quality']);
    const body = rows.slice(1);
    const seqs = body.map((r) => Number(r[0]));
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i)); // no holes, ascending
    const good = body.filter((r) => r[6] === 'good');
    expect(new Set(good.map((r) => r[1]))).toEqual(new Set(['soil-a1', 'climate-1', 'meter-1']));
    expect(body.some((r) => r[1] === 'climate-dead' && (r[6] === 'timeout' || r[6] === 'device_offline'))).toBe(true);
    for (const r of body) expect(r[3]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const voltage = good.find((r) => r[1] === 'meter-1' && r[2] === 'voltage')!;
    expect(voltage[5]).toBe('V');
    expect(Number(voltage[4])).toBeGreaterThan(200);

    // JSONL has the same keys in the same order
    const jl = await runCli(['export', '--data-dir', join(dir, 'data'), '--format', 'jsonl', '--device', 'soil-a1']);
    const first = JSON.parse(jl.stdout.split('\n')[0]!);
    expect(Object.keys(first)).toEqual(['seq', 'device', 'point', 'ts', 'value', 'unit', 'quality']);
    expect(first.device).toBe('soil-a1');
  });

  it('the healthy device on the bus keeps its poll rate while its neighbour is dead', async () => {
    await new Promise((r) => setTimeout(r, 3_500));
    const before = await runCli([
      'export',
      '--data-dir',
      join(dir, 'data'),
      '--format',
      'jsonl',
      '--device',
      'climate-1',
      '--point',
      'temperature',
      '--from',
      '-3s',
    ]);
    const polls = before.stdout.trim().split('\n').filter(Boolean).length;
    // 3 s at 300 ms = 10 polls (the newest may still be in the commit batch); the dead unit is backed off
    expect(polls).toBeGreaterThanOrEqual(7);
  });

  it('stops cleanly on SIGTERM with every reading committed, and continues the seq after SIGKILL', async () => {
    const running = gw!;
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);
    const after = csvRows((await runCli(['export', '--data-dir', join(dir, 'data')])).stdout).slice(1);
    const lastSeq = Number(after.at(-1)![0]);
    expect(after).toHaveLength(lastSeq);

    // start again, kill -9 mid-flight, start again: the seq goes on with no holes or repeats
    gw = startCli(['start', '--config', configFile]);
    await waitUntil(async () => (await health(httpPort)).lastSeq > lastSeq + 20, 15_000, 'new readings');
    gw.child.kill('SIGKILL');
    await gw.exited;
    gw = startCli(['start', '--config', configFile]);
    const h = await waitUntil(
      async () => {
        const x = await health(httpPort);
        return x.lastSeq > lastSeq + 40 ? x : undefined;
      },
      15_000,
      'readings after the crash',
    );
    expect(h.lastSeq).toBeGreaterThan(lastSeq);
    gw.child.kill('SIGTERM');
    await gw.exited;
    gw = null;
    const all = csvRows((await runCli(['export', '--data-dir', join(dir, 'data')])).stdout).slice(1);
    const seqs = all.map((r) => Number(r[0]));
    expect(seqs[0]).toBe(1);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  });
});

describe('npm start (the demo)', () => {
  it('runs the demo simulators and stores readings within seconds', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'langbiang-demo-'));
    const demo = startCli(['start'], { cwd });
    try {
      await demo.waitFor('demo simulators ready', 15_000);
      await demo.waitFor(/"readings":\d+.*readings stored/, 15_000);
      const exp = await runCli(['export', '--data-dir', join(cwd, '.data/demo'), '--format', 'jsonl']);
      const rows = exp.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { device: string; point: string; quality: string });
      const goodDevices = new Set(rows.filter((r) => r.quality === 'good').map((r) => r.device));
      for (const d of ['soil-a1', 'soil-a2', 'climate-1', 'meter-1', 'valves']) expect(goodDevices).toContain(d);
    } finally {
      demo.child.kill('SIGTERM');
      expect(await demo.exited).toBe(0);
    }
  });
});
