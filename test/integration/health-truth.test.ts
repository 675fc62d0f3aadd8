import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { ApiClient } from '../helpers/http-client.js';
import { type NotifyReceiver, startNotifyReceiver } from '../helpers/notify-receiver.js';
import { freePort } from '../helpers/ports.js';

/**
 * Issue 18, "a missing serial adapter looks healthy": a gateway whose RS-485 adapter is not plugged
 * in (a port path that really does not exist) must say so everywhere a technician looks — the log,
 * /healthz (503, degraded, the problem in words), `langbiang status`, the console's API and /metrics —
 * and keep listing the bus's devices, as bus_error.
 */
describe('a bus whose serial adapter is absent', () => {
  let dir: string;
  let port: string;
  let httpPort: number;
  let gw: RunningCli | null = null;
  let rx: NotifyReceiver;
  const problem = () => `bus rs485-1: ${port} not found — see ls /dev/serial/by-id (3 devices not polled)`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'langbiang-health-'));
    port = join(dir, 'ttyUSB0');
    expect(existsSync(port)).toBe(false);
    httpPort = await freePort();
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `gateway: { id: dl-gw-health, dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: rs485-1, type: modbus-rtu, port: ${port}, baudRate: 9600 }
  - { id: road, type: gpio, backend: simulated, simulate: { vehiclesPerMinute: 20, seed: 3 } }
devices:
  - { id: soil-a1, profile: comwintop-cwt-soil, bus: rs485-1, unit: 1, interval: 1s }
  - { id: soil-a2, profile: comwintop-cwt-soil, bus: rs485-1, unit: 2, interval: 1s }
  - { id: meter-1, profile: eastron-sdm120, bus: rs485-1, unit: 3, interval: 1s }
  - { id: loop-1, profile: loop-detector, bus: road, pins: { presence: 17 }, interval: 1s }
panel: { port: ${httpPort}, host: 127.0.0.1 }
`,
    );
    const tech = await runCli(['user', 'add', 'lan', '--role', 'technician', '--config', config], {
      input: 'ky-thuat-vien-1\n',
    });
    expect(tech.code, tech.stderr).toBe(0);
    // a real AF_UNIX datagram socket standing in for systemd ($NOTIFY_SOCKET), as under the unit
    rx = await startNotifyReceiver(join(dir, 'notify.sock'));
    gw = startCli(['start', '--config', config], { env: { NOTIFY_SOCKET: rx.socket } });
    await gw.waitFor('http listening', 20_000);
  });

  afterAll(() => {
    gw?.child.kill('SIGKILL');
    rx?.close();
  });

  it('is a problem in /healthz (503 degraded), its devices stay listed as bus_error', async () => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
    expect(res.status).toBe(503);
    const h = (await res.json()) as {
      status: string;
      problems: string[];
      buses: { bus: string; open: boolean; problem?: string; devices: { device: string; state: string }[] }[];
    };
    expect(h.status).toBe('degraded');
    expect(h.problems).toEqual([problem()]);
    const rs485 = h.buses.find((b) => b.bus === 'rs485-1');
    expect(rs485).toEqual({
      bus: 'rs485-1',
      open: false,
      problem: `${port} not found — see ls /dev/serial/by-id`,
      devices: [
        { device: 'soil-a1', state: 'bus_error' },
        { device: 'soil-a2', state: 'bus_error' },
        { device: 'meter-1', state: 'bus_error' },
      ],
    });
    expect(h.buses.find((b) => b.bus === 'road')?.open).toBe(true);
  });

  it('is in the log in words, once at start and as the gateway’s health', async () => {
    await gw!.waitFor('gateway degraded', 10_000);
    expect(gw!.output()).toContain(
      `bus rs485-1 not open: ${port} not found — see ls /dev/serial/by-id; its devices show bus_error`,
    );
    expect(gw!.output()).toContain(`gateway degraded: ${problem()}`);
  });

  it('systemd sees it: the status line of `systemctl status` says degraded and why', async () => {
    await rx.waitFor(
      (m) => m.some((x) => x.fields.STATUS?.startsWith('degraded')),
      10_000,
      'a STATUS=degraded notification',
    );
    const status = rx.messages.find((x) => x.fields.STATUS?.startsWith('degraded'))!.fields.STATUS;
    expect(status).toBe(`degraded: ${problem()}`);
    expect(rx.messages[0]!.fields.READY).toBe('1');
  });

  it('`langbiang status` lists the devices as bus_error, prints the problem and exits 3', async () => {
    const st = await runCli(['status', '--url', `http://127.0.0.1:${httpPort}`]);
    expect(st.code).toBe(3);
    expect(st.stdout).toMatch(/rs485-1\s+closed\s+soil-a1\s+bus_error/);
    expect(st.stdout).toMatch(/rs485-1\s+closed\s+meter-1\s+bus_error/);
    expect(st.stdout).toContain(`DEGRADED: 1 problem\n  ${problem()}\n`);
  });

  it('the console API and /metrics agree', async () => {
    const t = new ApiClient(`http://127.0.0.1:${httpPort}`);
    await t.login('lan', 'ky-thuat-vien-1');
    const buses = (await t.get('/api/buses')).body as { bus: string; open: boolean; problem?: string }[];
    expect(buses.find((b) => b.bus === 'rs485-1')).toMatchObject({
      open: false,
      problem: `${port} not found — see ls /dev/serial/by-id`,
    });
    const devices = (await t.get('/api/devices')).body as { id: string; health: { state: string } | null }[];
    expect(devices.find((d) => d.id === 'soil-a2')?.health?.state).toBe('bus_error');
    const m = await waitUntil(
      async () => {
        const r = await t.get('/metrics');
        return /langbiang_device_up\{[^}]*device="loop-1"/.test(r.text) ? r : null;
      },
      10_000,
      'metrics with the loop detector polled',
    );
    expect(m.text).toMatch(/langbiang_bus_open\{bus="rs485-1"[^}]*\} 0/);
    expect(m.text).toMatch(/langbiang_bus_open\{bus="road"[^}]*\} 1/);
    expect(m.text).toMatch(/langbiang_device_up\{bus="rs485-1",device="soil-a1"[^}]*\} 0/);
    expect(m.text).toMatch(/langbiang_health_degraded\{[^}]*\} 1/);
    expect(m.text).toMatch(/langbiang_health_problems\{[^}]*\} 1/);
  });

  it('/api/readings takes the times the CLI takes (from=-5m), and says which when refused', async () => {
    const t = new ApiClient(`http://127.0.0.1:${httpPort}`);
    await t.login('lan', 'ky-thuat-vien-1');
    const ok = await t.get('/api/readings?device=loop-1&point=occupancy&from=-5m');
    expect(ok.status, ok.text).toBe(200);
    expect(Array.isArray(ok.body.t)).toBe(true);
    const bad = await t.get('/api/readings?device=loop-1&point=occupancy&from=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('from must be epoch ms, an ISO 8601 time or relative like -5m or -24h');
  });
});
