import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type BrowserGateway, type LocalUser, logIn, startGatewayWithBrowser } from '../helpers/browser-gateway.js';
import { freePort } from '../helpers/ports.js';

const FARMER: LocalUser = { name: 'nongdan', role: 'farmer', password: 'ruong-dau-da-lat' };

/**
 * Issue 13: a device that stops answering shows as offline on the farmer's panel within seconds,
 * through the gateway's `device-health` event and the live stream, not at the panel's next full
 * reload (every 30 s) — and comes back the same way. Real gateway, real simulator, real Chromium.
 */
describe('the farmer panel follows a device going offline and back, live', () => {
  let dir: string;
  let sim: ModbusSimulator;
  let running: BrowserGateway;
  let base: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'langbiang-panel-health-'));
    sim = await ModbusSimulator.tcp({
      units: [
        { unit: 1, profile: loadProfile('comwintop-cwt-soil') },
        { unit: 3, profile: loadProfile('xy-md02') },
      ],
    });
    const httpPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `gateway: { id: dl-gw-health, name: "Nhà kính 3", dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: demo-tcp, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 300ms }
devices:
  - { id: soil-a1, name: "Đất luống A1", zone: "Khu A", profile: comwintop-cwt-soil, bus: demo-tcp, unit: 1, interval: 1s }
  - { id: climate-1, name: "Không khí nhà kính", zone: "Khu A", profile: xy-md02, bus: demo-tcp, unit: 3, interval: 1s }
panel: { port: ${httpPort}, host: 127.0.0.1 }
`,
    );
    running = await startGatewayWithBrowser(config, [FARMER]);
  }, 60_000);

  afterAll(async () => {
    await running?.stop();
    await sim?.close();
  });

  it('shows "mất kết nối" within seconds of the device going silent, and "đang kết nối" once it answers again', async () => {
    const ctx = await running.browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'vi-VN' });
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${base}/login`);
    await logIn(page, FARMER, `${base}/`);
    const loadedAt = Date.now();

    const soil = page.locator('article.device[data-device="soil-a1"] h3 .badge');
    const climate = page.locator('article.device[data-device="climate-1"] h3 .badge');
    await expect.poll(() => soil.getAttribute('class'), { timeout: 10_000 }).toBe('badge ok');
    expect(await soil.textContent()).toBe('đang kết nối');
    await page.locator('#live.on').waitFor({ timeout: 10_000 });

    // The probe stops answering: three timeouts in a row make the driver call it offline.
    sim.setBehaviour(1, 'dead');
    const silentAt = Date.now();
    await expect.poll(() => soil.getAttribute('class'), { timeout: 10_000, intervals: [200] }).toBe('badge offline');
    const shownAfterMs = Date.now() - silentAt;
    expect(await soil.textContent()).toBe('mất kết nối');
    // Not the panel's own reload: that comes 30 s after the page loaded.
    expect(Date.now() - loadedAt).toBeLessThan(30_000);
    expect(shownAfterMs).toBeLessThan(10_000);
    // the other device on the same bus is untouched
    expect(await climate.getAttribute('class')).toBe('badge ok');

    sim.setBehaviour(1, 'normal');
    await expect.poll(() => soil.getAttribute('class'), { timeout: 15_000, intervals: [200] }).toBe('badge ok');
    expect(await soil.textContent()).toBe('đang kết nối');
    expect(errors).toEqual([]);
    process.stdout.write(`panel: device offline shown ${shownAfterMs} ms after it went silent\n`);
    await ctx.close();
  }, 60_000);
});
