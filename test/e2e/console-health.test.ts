import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserGateway, type LocalUser, logIn, startGatewayWithBrowser } from '../helpers/browser-gateway.js';
import { freePort } from '../helpers/ports.js';

const TECHNICIAN: LocalUser = { name: 'lan', role: 'technician', password: 'ky-thuat-vien-1' };

/**
 * Issue 18: the technician console tells the same story as /healthz and `langbiang status` when a
 * serial adapter is missing — the health line with the problem in words, the bus closed with its
 * reason, and the bus's devices as bus_error — in real Chromium.
 */
describe('the console with a missing serial adapter', () => {
  let dir: string;
  let port: string;
  let base: string;
  let running: BrowserGateway;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'langbiang-console-health-'));
    port = join(dir, 'ttyUSB0');
    const httpPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `gateway: { id: dl-gw-console, dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: rs485-1, type: modbus-rtu, port: ${port}, baudRate: 4800 }
devices:
  - { id: soil-a1, profile: comwintop-cwt-soil, bus: rs485-1, unit: 1, interval: 1s }
  - { id: soil-a2, profile: comwintop-cwt-soil, bus: rs485-1, unit: 2, interval: 1s }
panel: { port: ${httpPort}, host: 127.0.0.1 }
`,
    );
    running = await startGatewayWithBrowser(config, [TECHNICIAN]);
  }, 60_000);

  afterAll(async () => {
    await running?.stop();
  });

  it('shows degraded with the problem, the closed bus with its reason, the devices as bus_error', async () => {
    const page = await running.browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${base}/console`);
    // not logged in: the console sends the browser to the login page, and back after it
    await page.waitForURL(/\/login/);
    await logIn(page, TECHNICIAN, `${base}/console`);
    await page.waitForSelector('#health .badge.bus_error', { timeout: 15_000 });
    expect(await page.textContent('#health .badge')).toBe('degraded');
    expect(await page.textContent('#health li')).toBe(
      `bus rs485-1: ${port} not found — see ls /dev/serial/by-id (2 devices not polled)`,
    );
    // the software: run from a checkout (no install root), so no previous release and no update yet
    const version = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
    expect(await page.textContent('#software')).toBe(`Software ${version}, previous none`);
    const bus = page.locator('#buses tr[data-bus="rs485-1"]');
    expect(await bus.locator('.badge').textContent()).toBe('closed');
    expect(await bus.locator('td.error').textContent()).toBe(`${port} not found — see ls /dev/serial/by-id`);
    for (const d of ['soil-a1', 'soil-a2'])
      expect(await page.locator(`#device-table tr[data-device="${d}"] .badge`).textContent()).toBe('bus_error');
    expect(errors).toEqual([]);
  });
});
