import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type BrowserGateway, type LocalUser, logIn, startGatewayWithBrowser } from '../helpers/browser-gateway.js';
import { waitUntil } from '../helpers/cli.js';
import { ApiClient } from '../helpers/http-client.js';
import { freePort } from '../helpers/ports.js';

const TECHNICIAN: LocalUser = { name: 'lan', role: 'technician', password: 'ky-thuat-vien-1' };
const GROUP_BY =
  "SELECT device, point, count(*) AS n FROM readings('*') WHERE quality = 'good' GROUP BY device, point ORDER BY device, point";

/**
 * The console's SQL box in real Chromium, against `langbiang start` polling two simulated
 * devices: a technician logs in, runs a GROUP BY, sees one row per device and point, and
 * downloads the same rows as CSV; a wrong query shows the gateway's sentence.
 */
describe('the console SQL box', () => {
  let dir: string;
  let sim: ModbusSimulator;
  let base: string;
  let running: BrowserGateway;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'langbiang-console-sql-e2e-'));
    sim = await ModbusSimulator.tcp({
      units: [
        { unit: 1, profile: loadProfile('comwintop-cwt-soil') },
        { unit: 5, profile: loadProfile('waveshare-modbus-rtu-relay-8ch') },
      ],
    });
    const httpPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `gateway: { id: dl-gw-console-sql, dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: sim, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 300ms }
devices:
  - { id: soil-a1, profile: comwintop-cwt-soil, bus: sim, unit: 1, interval: 300ms }
  - { id: valves, profile: waveshare-modbus-rtu-relay-8ch, bus: sim, unit: 5, interval: 500ms }
storage: { batchMaxDelay: 200ms }
panel: { port: ${httpPort}, host: 127.0.0.1 }
`,
    );
    running = await startGatewayWithBrowser(config, [TECHNICIAN]);
  }, 60_000);

  afterAll(async () => {
    await running?.stop();
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a GROUP BY, shows its rows, and downloads them as CSV', async () => {
    // wait until both devices have stored readings
    const api = new ApiClient(base);
    await api.login(TECHNICIAN.name, TECHNICIAN.password);
    await waitUntil(
      async () => new Set((await api.get('/api/latest')).body.map((r: { device: string }) => r.device)).size === 2,
      15_000,
      'readings of both devices',
    );

    const page = await running.browser.newPage({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${base}/console`);
    await page.waitForURL(/\/login/);
    await logIn(page, TECHNICIAN, `${base}/console`);

    await page.fill('#sql-text', GROUP_BY);
    await page.click('#sql-run');
    await page.waitForSelector('#sql-result tbody tr');
    const head = await page.locator('#sql-result thead th').allTextContents();
    expect(head).toEqual(['device', 'point', 'n']);
    const shown = await page
      .locator('#sql-result tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    const want = [
      ...loadProfile('comwintop-cwt-soil').points.map((p) => `soil-a1/${p.name}`),
      ...loadProfile('waveshare-modbus-rtu-relay-8ch').points.map((p) => `valves/${p.name}`),
    ].sort();
    expect(shown.map((r) => `${r[0]}/${r[1]}`)).toEqual(want);
    for (const r of shown) expect(Number(r[2])).toBeGreaterThan(0);
    expect(await page.textContent('#sql-status')).toMatch(new RegExp(`^${want.length} rows · \\d+ ms$`));

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#sql-csv')]);
    expect(download.suggestedFilename()).toMatch(/^langbiang-query-.*\.csv$/);
    const file = join(dir, 'result.csv');
    await download.saveAs(file);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\r\n');
    expect(lines[0]).toBe('device,point,n');
    expect(lines.slice(1)).toEqual(shown.map((r) => r.join(',')));

    // more rows than the gateway returns: the first 1000, and it says so
    await page.fill(
      '#sql-text',
      'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) SELECT x FROM c',
    );
    await page.click('#sql-run');
    await page.waitForFunction(() => document.querySelectorAll('#sql-result tbody tr').length === 1000);
    expect(await page.textContent('#sql-status')).toMatch(/^1000 rows shown; truncated: the query has more/);
    await page.fill('#sql-text', GROUP_BY);
    await page.click('#sql-run');
    await page.waitForFunction((n) => document.querySelectorAll('#sql-result tbody tr').length === n, want.length);

    // a wrong query: the gateway's one sentence, in red, and the last result stays
    await page.fill('#sql-text', 'CREATE TABLE notes(x)');
    await page.click('#sql-run');
    await page.waitForSelector('#sql-status.error');
    expect(await page.textContent('#sql-status')).toBe('SQL: only queries that return rows (SELECT …) are run here');
    expect(await page.locator('#sql-result tbody tr').count()).toBe(want.length);
    expect(errors).toEqual([]);
  }, 60_000);
});
