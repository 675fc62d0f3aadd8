import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserGateway, type LocalUser, logIn, startGatewayWithBrowser } from '../helpers/browser-gateway.js';
import { freePort } from '../helpers/ports.js';

const TECHNICIAN: LocalUser = { name: 'lan', role: 'technician', password: 'ky-thuat-vien-1' };

/**
 * The console's Update section in real Chromium: a technician picks a file that is not a signed
 * release and presses Install; the upload goes with the session's CSRF token, the gateway refuses
 * it with one sentence, the page says so and shows it as the last update, and the gateway runs on.
 */
describe('the console update upload', () => {
  let dir: string;
  let base: string;
  let running: BrowserGateway;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'langbiang-console-update-'));
    const httpPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `gateway: { id: dl-gw-console-update, dataDir: ${dir}/data, assumeClockSynced: true }
buses: []
devices: []
panel: { port: ${httpPort}, host: 127.0.0.1 }
`,
    );
    writeFileSync(join(dir, 'langbiang-9.9.9-x64.lbr'), randomBytes(100_000));
    running = await startGatewayWithBrowser(config, [TECHNICIAN]);
  }, 60_000);

  afterAll(async () => {
    await running?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('uploads the chosen file, shows the refusal and the last update, and the gateway goes on', async () => {
    const page = await running.browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${base}/login`);
    await logIn(page, TECHNICIAN, `${base}/console`);
    await page.waitForSelector('#update-status:not(:empty)', { timeout: 15_000 });
    expect(await page.textContent('#update-status')).toBe('No update recorded on this gateway yet.');
    await page.setInputFiles('#update-file', join(dir, 'langbiang-9.9.9-x64.lbr'));
    await page.click('#update-install');
    await page.waitForFunction(
      () => document.getElementById('update-result')?.textContent?.startsWith('Not installed:'),
      null,
      {
        timeout: 15_000,
      },
    );
    const result = (await page.textContent('#update-result')) ?? '';
    expect(result).not.toMatch(/not installed: /); // said once, not twice
    expect(result.length).toBeGreaterThan('Not installed: '.length + 5);
    await page.waitForFunction(() =>
      document.getElementById('update-status')?.textContent?.startsWith('Last update: failed'),
    );
    expect(await page.textContent('#update-status')).toMatch(/^Last update: failed from the console/);
    expect(await page.isEnabled('#update-install')).toBe(true);
    expect(errors).toEqual([]);
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(running.gw.child.exitCode).toBeNull();
  });
});
