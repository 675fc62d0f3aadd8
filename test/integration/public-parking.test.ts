import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, startCli, waitUntil } from '../helpers/cli.js';
import { ApiClient, setupCodeFrom } from '../helpers/http-client.js';
import { freePort } from '../helpers/ports.js';

// A gateway process with a car park counted on the simulated gpio bus, its free-spaces sign on a
// simulated Modbus TCP line, and the public page on.
describe('public car-park page and sign', () => {
  let dir: string;
  let gw: RunningCli;
  let base: string;
  let sign: ModbusSimulator;
  let file: string;

  const sim = () => sign.stats(7);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lb-parking-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    // the free-spaces sign at the entrance, an RS-485 LED display behind a Modbus TCP gateway
    sign = await ModbusSimulator.tcp({ units: [{ unit: 7, profile: loadProfile('rs485-led-display-4digit') }] });
    file = join(dir, 'gateway.yaml');
    writeFileSync(
      file,
      `gateway: { id: dl-park-e2e, dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: lake, type: gpio, backend: simulated, simulate: { vehiclesPerMinute: 120, seed: 3 } }
  - { id: signs, type: modbus-tcp, host: 127.0.0.1, port: ${sign.port}, timeout: 300ms }
devices:
  - { id: lake-sign, profile: rs485-led-display-4digit, bus: signs, unit: 7, interval: 5s }
  - { id: lake-park, name: "Bãi đỗ xe hồ Xuân Hương", profile: parking-counter, bus: lake, pins: { entry: 5, exit: 6 }, options: { capacity: 80, recalibrateAt: "03:00" }, interval: 500ms }
parkingSigns: [{ carPark: lake-park, device: lake-sign }]
storage: { batchMaxDelay: 100ms }
panel: { port: ${port}, host: 127.0.0.1, publicParking: { enabled: true, carParks: [lake-park], ratePerMinute: 6 } }
`,
    );
    gw = startCli(['start', '--config', file]);
    await gw.waitFor('http listening', 20_000);
  }, 30_000);

  afterAll(async () => {
    gw?.child.kill('SIGTERM');
    await gw?.exited;
    await sign?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows the free spaces without login, and nothing else', async () => {
    const body = await waitUntil(
      async () => {
        const r = (await (await fetch(`${base}/public/parking.json`)).json()) as {
          carParks: Array<{ id: string; freeSpaces: number | null; capacity: number }>;
        };
        return r.carParks[0]?.freeSpaces !== null ? r : undefined;
      },
      10_000,
      'free spaces on the public page',
    );
    expect(body.carParks).toHaveLength(1);
    const p = body.carParks[0]!;
    expect(Object.keys(p).sort()).toEqual(['capacity', 'freeSpaces', 'id', 'name', 'updated']);
    expect(p).toMatchObject({ id: 'lake-park', name: 'Bãi đỗ xe hồ Xuân Hương', capacity: 80 });
    expect(p.freeSpaces).toBeGreaterThanOrEqual(0);
    expect(p.freeSpaces).toBeLessThanOrEqual(80);

    const html = await fetch(`${base}/public/parking`);
    expect(html.status).toBe(200);
    const text = await html.text();
    expect(text).toContain('Bãi đỗ xe hồ Xuân Hương');
    expect(text).not.toMatch(/<script/i);

    // the rest of the gateway still needs a session
    for (const path of ['/api/devices', '/api/alarms', '/public/other', '/api/readings?device=lake-park']) {
      expect((await fetch(`${base}${path}`)).status, path).toBe(401);
    }
    expect((await fetch(`${base}/public/parking.json`, { method: 'POST' })).status).toBe(405);
  });

  it('the sign at the entrance shows the free spaces as they change', async () => {
    // the sign's number follows the count (the sign's own reading and the car park's agree)
    await waitUntil(() => sim().writes >= 2, 10_000, 'the sign written at least twice');
    const shown = sign.getValue(7, 'display_value');
    expect(shown).toBeGreaterThanOrEqual(0);
    expect(shown).toBeLessThanOrEqual(80);
    expect(gw.output()).not.toMatch(/free-spaces sign not updated/);
  });

  it('set occupancy goes through the router, and the count survives a restart', async () => {
    const api = new ApiClient(base);
    const setup = await api.post('/api/setup', {
      code: setupCodeFrom(gw.output()),
      user: 'tech',
      password: 'correct horse',
    });
    expect(setup.status, setup.text).toBe(200);
    const set = await api.post('/api/commands', { device: 'lake-park', point: 'occupancy', value: 60 });
    expect(set.status, set.text).toBe(200);
    expect(
      (await api.post('/api/commands', { device: 'lake-park', point: 'occupancy', value: 81 })).body,
    ).toMatchObject({
      ok: false,
    });
    const free = async () =>
      ((await (await fetch(`${base}/public/parking.json`)).json()) as { carParks: Array<{ freeSpaces: number }> })
        .carParks[0]?.freeSpaces;
    // 80 − 60, give or take the cars of the last half second
    await waitUntil(async () => Math.abs(((await free()) ?? 0) - 20) <= 4, 5000, 'about 20 free spaces');
    gw.child.kill('SIGTERM');
    await gw.exited;
    const restartedAt = Date.now();
    gw = startCli(['start', '--config', file]);
    await gw.waitFor('http listening', 20_000);
    // the first count after the restart starts from the stored one, not from zero (80 free)
    const after = await waitUntil(
      async () => {
        const p = (
          (await (await fetch(`${base}/public/parking.json`)).json()) as {
            carParks: Array<{ freeSpaces: number; updated: string }>;
          }
        ).carParks[0];
        return p && Date.parse(p.updated) > restartedAt ? p.freeSpaces : undefined;
      },
      5000,
      'a count taken after the restart',
    );
    expect(Math.abs(after - 20)).toBeLessThanOrEqual(10);
  }, 40_000);

  it('is rate limited per address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await fetch(`${base}/public/parking.json`)).status);
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(6);
  });
});
