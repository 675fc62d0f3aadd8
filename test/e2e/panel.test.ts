import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../gateway/store/index.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { launchChromium } from '../helpers/browser.js';
import { type RunningCli, startCli, waitUntil } from '../helpers/cli.js';
import { setupCodeFrom } from '../helpers/http-client.js';
import { freePort } from '../helpers/ports.js';

const ARTIFACTS = join(process.cwd(), 'test-artifacts');
// The README's screenshots are refreshed only on request, so a test run never dirties the tree.
const UPDATE_DOCS = process.env.LANGBIANG_UPDATE_SCREENSHOTS === '1';
const PHONE = { width: 390, height: 844 };

/** A week of history for the charts, as if the gateway had been running (10-minute steps). */
function seedHistory(dataDir: string): void {
  const store = Store.open({ dataDir, batchMaxReadings: 100_000 });
  const now = Date.now();
  const rows = [];
  for (let t = now - 7 * 86_400_000; t < now - 120_000; t += 600_000) {
    const day = ((t / 3_600_000 + 7) % 24) / 24; // local hour of Đà Lạt
    const moisture = 32 + 8 * Math.cos(2 * Math.PI * day) - ((t / 3_600_000) % 12) * 0.6;
    const air = 17 + 6 * Math.sin(2 * Math.PI * (day - 0.3));
    for (const [device, point, value, unit] of [
      ['soil-a1', 'moisture', moisture, '%'],
      ['soil-a1', 'temperature', air - 1.5, '°C'],
      ['climate-1', 'temperature', air, '°C'],
      ['climate-1', 'humidity', 95 - 2 * air, '%RH'],
    ] as const)
      rows.push({
        device,
        point,
        value: Math.round(value * 10) / 10,
        unit,
        quality: 'good' as const,
        ts: t,
        mono: t - now,
        bootId: 'seed',
        synced: true,
      });
  }
  store.append(rows);
  store.close();
}

describe('the farmer panel and the technician console in real Chromium', () => {
  let dir: string;
  let sim: ModbusSimulator;
  let gw: RunningCli;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'langbiang-e2e-'));
    // Simulators run here, in the test process, so the test can look at the relay coil itself.
    sim = await ModbusSimulator.tcp({
      units: [
        { unit: 1, profile: loadProfile('comwintop-cwt-soil') },
        { unit: 2, profile: loadProfile('comwintop-cwt-soil') },
        { unit: 3, profile: loadProfile('xy-md02') },
        { unit: 4, profile: loadProfile('eastron-sdm120') },
        { unit: 5, profile: loadProfile('waveshare-modbus-rtu-relay-8ch') },
      ],
    });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    seedHistory(join(dir, 'data'));
    const file = join(dir, 'gateway.yaml');
    // the demo config, on free ports
    writeFileSync(
      file,
      `gateway: { id: dl-demo-e2e, name: "Nhà kính demo", dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: demo-tcp, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 1s }
devices:
  - { id: soil-a1, name: "Đất luống A1", zone: "Khu A", profile: comwintop-cwt-soil, bus: demo-tcp, unit: 1, interval: 2s }
  - { id: soil-a2, name: "Đất luống B1", zone: "Khu B", profile: comwintop-cwt-soil, bus: demo-tcp, unit: 2, interval: 2s }
  - { id: climate-1, name: "Không khí nhà kính", zone: "Khu A", profile: xy-md02, bus: demo-tcp, unit: 3, interval: 2s }
  - { id: meter-1, name: "Điện máy bơm", profile: eastron-sdm120, bus: demo-tcp, unit: 4, interval: 5s }
  - { id: valves, name: "Van tưới", zone: "Khu A", profile: waveshare-modbus-rtu-relay-8ch, bus: demo-tcp, unit: 5, interval: 2s }
storage: { maxBytes: 256MiB, maxAge: 30d, batchMaxDelay: 500ms }
panel:
  port: ${port}
  host: 127.0.0.1
  irrigation:
    - { device: valves, point: relay_1, label: "Van tưới khu A" }
    - { device: valves, point: relay_2, label: "Van tưới khu B" }
`,
    );
    gw = startCli(['start', '--config', file]);
    [browser] = await Promise.all([launchChromium(), gw.waitFor(/FIRST-RUN SETUP CODE/, 20_000)]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    gw?.child.kill('SIGKILL');
    await gw?.exited;
    await sim?.close();
  });

  async function shot(page: Page, name: string, docs?: string): Promise<void> {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
    if (UPDATE_DOCS && docs) await page.screenshot({ path: join(process.cwd(), 'docs', 'img', docs) });
  }

  it('first run: setup with the logged code, console, panel in Vietnamese, chart, irrigation', async () => {
    const tech = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors: string[] = [];
    tech.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    tech.on('pageerror', (e) => errors.push(String(e)));

    // 1. no user yet: the panel sends the browser to the setup page; the code comes from the log
    await tech.goto(`${base}/`);
    expect(new URL(tech.url()).pathname).toBe('/setup');
    await tech.fill('input[name=code]', setupCodeFrom(gw.output()).toLowerCase());
    await tech.fill('input[name=user]', 'kythuat');
    await tech.fill('input[name=password]', 'mat-khau-dai');
    await tech.click('button[type=submit]');
    await tech.waitForURL(`${base}/console`);

    // 2. console: devices with health, a farmer account, an alert threshold
    await tech.waitForSelector('#device-table tr[data-device="soil-a1"] .badge.ok', { timeout: 15_000 });
    await tech.fill('#user-form input[name=name]', 'nongdan');
    await tech.fill('#user-form input[name=password]', 'ruong-dau-da-lat');
    await tech.click('#user-form button[type=submit]');
    await tech.waitForSelector('#user-table tr[data-user="nongdan"]');
    await tech.click('#threshold-add');
    const row = tech.locator('#threshold-table tbody tr').last();
    await row.locator('[name=device]').fill('soil-a1');
    await row.locator('[name=point]').fill('moisture');
    await row.locator('[name=below]').fill('46'); // the simulated soil dries from 45 % to 25 %
    await tech.click('#threshold-save');
    await tech.waitForSelector('#threshold-status:text("saved")');

    // 3. a broken config: the console names the key path and the line
    const ta = tech.locator('#config-text');
    const text = await ta.inputValue();
    expect(text).toContain('interval: 2s');
    await ta.fill(text.replace('interval: 2s', 'interval: soon'));
    await tech.click('#config-validate');
    const problem = tech.locator('#config-problems li').first();
    await expect.poll(() => problem.getAttribute('data-path'), { timeout: 10_000 }).toBe('devices.0.interval');
    expect(await problem.textContent()).toMatch(/^devices\.0\.interval: .*\(line \d+\)$/);
    await tech.locator('#config').scrollIntoViewIfNeeded();
    await shot(tech, 'console-config-problem');
    expect(errors).toEqual([]);

    // 4. the farmer logs in on a phone and measures what the first load costs
    const ctx = await browser.newContext({
      viewport: PHONE,
      deviceScaleFactor: 1,
      isMobile: true,
      hasTouch: true,
      locale: 'vi-VN',
    });
    const phone = await ctx.newPage();
    phone.on('pageerror', (e) => errors.push(String(e)));
    await phone.goto(`${base}/login`);
    await phone.fill('input[name=user]', 'nongdan');
    await phone.fill('input[name=password]', 'ruong-dau-da-lat');
    const cdp = await ctx.newCDPSession(phone);
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    let bytes = 0;
    const urls = new Map<string, string>();
    cdp.on('Network.responseReceived', (e) => urls.set(e.requestId, e.response.url));
    cdp.on('Network.loadingFinished', (e) => {
      if (!urls.get(e.requestId)?.includes('/api/live')) bytes += e.encodedDataLength;
    });
    await phone.click('button[type=submit]');
    await phone.waitForURL(`${base}/`);

    // 5. live values in Vietnamese, with units and their age, and the threshold alert
    const moisture = phone.locator('li[data-device="soil-a1"][data-point="moisture"]');
    await expect.poll(() => moisture.getAttribute('data-state'), { timeout: 15_000 }).not.toBe('nodata');
    await phone.waitForLoadState('networkidle').catch(() => {});
    const firstLoad = bytes;
    writeFileSync(join(ARTIFACTS, 'first-load.json'), `${JSON.stringify({ bytes: firstLoad }, null, 2)}\n`);
    process.stdout.write(`panel first load (after login, cache disabled): ${firstLoad} bytes transferred\n`);
    expect(firstLoad).toBeGreaterThan(5_000);
    expect(await moisture.locator('.label').textContent()).toBe('Độ ẩm đất');
    expect(await moisture.locator('.unit').textContent()).toBe('%');
    expect(await moisture.locator('.val').textContent()).toMatch(/^\d+(,\d+)?%$/);
    expect(await moisture.locator('.age').textContent()).toMatch(/cập nhật \d+ (giây|phút) trước/);
    expect(await moisture.locator('.warn').textContent()).toMatch(/Cảnh báo: quá khô/);
    const page = await phone.locator('main').textContent();
    for (const word of ['Khu A', 'Khu B', 'Tưới nước', 'Nhiệt độ không khí', 'Độ ẩm không khí', 'Van tưới khu A'])
      expect(page).toContain(word);
    expect(await phone.getAttribute('html', 'lang')).toBe('vi');

    // 6. history: the chart library is fetched from the gateway, the canvas has a week of data
    await moisture.click();
    await phone.waitForSelector('#chart canvas', { timeout: 15_000 });
    await phone.click('#history-tabs button[data-range="7d"]');
    await expect
      .poll(async () => Number(await phone.locator('#chart').getAttribute('data-points')), { timeout: 15_000 })
      .toBeGreaterThan(100);
    const painted = await phone.evaluate(() => {
      const c = document.querySelector('#chart canvas') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let inked = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) inked++;
      return inked;
    });
    expect(painted).toBeGreaterThan(500);
    await shot(phone, 'panel-history');

    // 7. irrigation: confirm, and the simulated relay's coil switches
    expect(sim.getValue(5, 'relay_1')).toBe(0);
    const relay = phone.locator('article.relay[data-point="relay_1"]');
    await relay.locator('button').click();
    await expect.poll(() => phone.locator('#confirm-text').textContent()).toBe('Mở Van tưới khu A?');
    await phone.click('#confirm-ok');
    await waitUntil(() => sim.getValue(5, 'relay_1') === 1, 10_000, 'the relay coil to switch on');
    await expect.poll(() => relay.locator('.state').textContent(), { timeout: 10_000 }).toBe('Đang mở');
    expect(sim.getValue(5, 'relay_2')).toBe(0);

    await phone.click('#history-close');
    await phone.evaluate(() => {
      for (const t of document.querySelectorAll('.toast')) t.remove();
      window.scrollTo(0, 0);
    });
    await shot(phone, 'panel', 'panel.png');

    // 8. the English switch
    await phone.click('#lang');
    await expect.poll(() => moisture.locator('.label').textContent()).toBe('Soil moisture');
    expect(errors).toEqual([]);
    await ctx.close();

    // the console again, after some polling, for its picture
    await tech.setViewportSize({ width: 1000, height: 560 });
    await tech.reload();
    await tech.waitForSelector('#device-table tr[data-device="valves"] .badge.ok');
    await tech.evaluate(() => window.scrollTo(0, 0));
    await shot(tech, 'console', 'console.png');

    // 9. apply from the console: a change that cannot start (its HTTP port is taken) is rolled back
    // by itself, and the console says so, with the reason, once the gateway answers again
    const blocker = net.createServer();
    const blockedPort = await freePort();
    await new Promise<void>((r) => blocker.listen(blockedPort, '127.0.0.1', () => r()));
    try {
      const running = await ta.inputValue();
      const ownPort = `port: ${new URL(base).port}`;
      expect(running).toContain(ownPort);
      await ta.fill(running.replace(ownPort, `port: ${blockedPort}`));
      tech.once('dialog', (d) => void d.accept());
      await tech.click('#config-apply');
      const status = tech.locator('#config-status');
      await expect.poll(() => status.getAttribute('data-state'), { timeout: 30_000 }).toBe('rolled_back');
      expect(await status.textContent()).toMatch(/^rolled back: the change by kythuat \(the console\) failed/);
      expect(await tech.locator('#config-outcome li').first().textContent()).toMatch(
        /the new config did not start: .*(EADDRINUSE|in use)/,
      );
      // the editor shows what runs again: the previous config, on its own port
      await expect.poll(() => ta.inputValue(), { timeout: 10_000 }).toContain(ownPort);
      expect(await tech.isEnabled('#config-apply')).toBe(true);
      await tech.locator('#config-outcome').scrollIntoViewIfNeeded();
      await shot(tech, 'console-config-rolled-back');
    } finally {
      blocker.close();
    }
    await tech.close();
  }, 90_000);
});
