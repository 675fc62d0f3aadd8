import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigOrThrow } from '../../gateway/config/index.js';
import { GatewayHost } from '../../gateway/host.js';
import { effectiveConfig } from '../../gateway/remote-config/index.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { waitUntil } from '../helpers/cli.js';
import { ApiClient, setupCodeFrom } from '../helpers/http-client.js';
import { freePort } from '../helpers/ports.js';

/** Every API route; each must answer 401 without a session or token. */
const ROUTES: [string, string][] = [
  ['GET', '/api/session'],
  ['POST', '/api/logout'],
  ['POST', '/api/password'],
  ['GET', '/api/panel'],
  ['GET', '/api/devices'],
  ['GET', '/api/devices/soil-a1'],
  ['POST', '/api/devices/soil-a1/read'],
  ['GET', '/api/latest'],
  ['GET', '/api/readings?device=soil-a1&point=moisture'],
  ['GET', '/api/live'],
  ['GET', '/api/thresholds'],
  ['PUT', '/api/thresholds'],
  ['POST', '/api/commands'],
  ['GET', '/api/buses'],
  ['GET', '/api/config'],
  ['POST', '/api/config/validate'],
  ['POST', '/api/config/apply'],
  ['GET', '/api/config/apply'],
  ['GET', '/api/config/apply/abc'],
  ['GET', '/api/sync'],
  ['POST', '/api/sql'],
  ['GET', '/api/events'],
  ['GET', '/api/logs'],
  ['GET', '/api/users'],
  ['POST', '/api/users'],
  ['DELETE', '/api/users/bob'],
  ['GET', '/api/tokens'],
  ['POST', '/api/tokens'],
  ['DELETE', '/api/tokens/abc'],
  ['GET', '/metrics'],
  ['GET', '/api/no-such-route'],
];

/** Technician-only routes a farmer must get 403 on. */
const TECH_ONLY: [string, string][] = [
  ['POST', '/api/devices/soil-a1/read'],
  ['GET', '/api/buses'],
  ['GET', '/api/config'],
  ['POST', '/api/config/validate'],
  ['POST', '/api/config/apply'],
  ['GET', '/api/config/apply'],
  ['GET', '/api/config/apply/abc'],
  ['GET', '/api/sync'],
  ['POST', '/api/sql'],
  ['GET', '/api/events'],
  ['GET', '/api/logs'],
  ['GET', '/api/users'],
  ['POST', '/api/users'],
  ['GET', '/api/tokens'],
  ['POST', '/api/tokens'],
  ['PUT', '/api/thresholds'],
  ['GET', '/metrics'],
];

function configText(dir: string, simPort: number, httpPort: number, extra = ''): string {
  return `gateway: { id: dl-http-test, name: "Nhà kính thử", dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: tcp-1, type: modbus-tcp, host: 127.0.0.1, port: ${simPort}, timeout: 500ms }
devices:
  - { id: soil-a1, name: "Đất A1", zone: "Khu A", profile: comwintop-cwt-soil, bus: tcp-1, unit: 1, interval: 300ms }
  - { id: valves, name: "Van", zone: "Khu A", profile: waveshare-modbus-rtu-relay-8ch, bus: tcp-1, unit: 5, interval: 500ms }
storage: { batchMaxDelay: 200ms }
panel:
  port: ${httpPort}
  host: 127.0.0.1
  irrigation:
    - { device: valves, point: relay_1, label: "Van khu A" }
${extra}`;
}

describe('HTTP API: sessions, roles, CSRF, rate limits, tokens, config apply', () => {
  let dir: string;
  let file: string;
  let sim: ModbusSimulator;
  let host: GatewayHost;
  let port: number;
  let base: string;
  let logText = '';
  let log: ReturnType<typeof pino>;
  const tech = () => new ApiClient(base);
  let t: ApiClient;
  let farmer: ApiClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'langbiang-http-'));
    sim = await ModbusSimulator.tcp({
      units: [
        { unit: 1, profile: loadProfile('comwintop-cwt-soil') },
        { unit: 5, profile: loadProfile('waveshare-modbus-rtu-relay-8ch') },
      ],
    });
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    file = join(dir, 'gateway.yaml');
    writeFileSync(file, configText(dir, sim.port, port));
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logText += chunk.toString();
        cb();
      },
    });
    log = pino({ level: 'info' }, sink);
    // a short probation for config changes (5 min in the field)
    host = await GatewayHost.start(loadConfigOrThrow(file).config, file, { log, configWatchMs: 2500 });
  });

  afterAll(async () => {
    await host?.stop();
    await sim?.close();
  });

  it('serves /healthz without a session and answers 401 on every other route', async () => {
    const anon = new ApiClient(base);
    expect((await anon.get('/healthz')).status).toBe(200);
    for (const [method, path] of ROUTES) {
      const r = await anon.req(method, path, method === 'GET' ? {} : { body: {} });
      expect(r.status, `${method} ${path}`).toBe(401);
      expect(r.text).not.toMatch(/at .*\.ts:\d+/);
    }
    // pages send the browser to the setup page while nobody exists
    const page = await anon.get('/');
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toBe('/setup');
    // the login page's assets are public, and carry the security headers
    const css = await anon.get('/assets/app.css');
    expect(css.status).toBe(200);
    expect(css.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(css.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    expect(css.headers.get('x-frame-options')).toBe('DENY');
    expect(css.headers.get('referrer-policy')).toBe('no-referrer');
    expect(css.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('first-run setup: the code from the log makes the first technician, once', async () => {
    t = tech();
    expect((await t.get('/api/setup')).body).toEqual({ needed: true });
    const code = setupCodeFrom(logText);
    const wrong = await t.post('/api/setup', { code: 'AAAA-BBBB-CCCC', user: 'tech', password: 'correct horse' });
    expect(wrong.status).toBe(403);
    const newCode = setupCodeFrom(logText);
    expect(newCode).toBe(code); // a wrong guess does not burn the valid code
    const ok = await t.post('/api/setup', { code, user: 'tech', password: 'correct horse' });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.role).toBe('technician');
    const cookie = ok.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const again = await new ApiClient(base).post('/api/setup', { code, user: 'evil', password: 'correct horse' });
    expect(again.status).toBe(409);
    expect((await t.get('/api/session')).body.user).toBe('tech');
    // the users file holds scrypt hashes, never the password
    const users = readFileSync(join(dir, 'data', 'users.json'), 'utf8');
    expect(users).toMatch(/scrypt\$/);
    expect(users).not.toContain('correct horse');
  });

  it('refuses state-changing requests without the CSRF token or from another origin', async () => {
    const noToken = await t.req('POST', '/api/users', {
      body: { name: 'mai', role: 'farmer', password: 'ruong-dau-1' },
      csrf: false,
    });
    expect(noToken.status).toBe(403);
    expect(noToken.body.error).toMatch(/CSRF/);
    const badOrigin = await t.req('POST', '/api/users', {
      body: { name: 'mai', role: 'farmer', password: 'ruong-dau-1' },
      origin: 'http://evil.example',
    });
    expect(badOrigin.status).toBe(403);
    const crossSite = await t.req('POST', '/api/users', {
      body: { name: 'mai', role: 'farmer', password: 'ruong-dau-1' },
      origin: null,
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    expect(crossSite.status).toBe(403);
    expect((await t.get('/api/users')).body.map((u: { name: string }) => u.name)).toEqual(['tech']);
    const ok = await t.post('/api/users', { name: 'mai', role: 'farmer', password: 'ruong-dau-1' });
    expect(ok.status, ok.text).toBe(200);
  });

  it('a farmer gets 403 on technician routes and may switch only irrigation relays', async () => {
    farmer = new ApiClient(base);
    await farmer.login('mai', 'ruong-dau-1');
    for (const [method, path] of TECH_ONLY) {
      const r = await farmer.req(method, path, method === 'GET' ? {} : { body: {} });
      expect(r.status, `${method} ${path}`).toBe(403);
    }
    expect((await farmer.get('/console')).headers.get('location')).toBe('/');
    const panel = await farmer.get('/api/panel');
    expect(panel.status).toBe(200);
    expect(panel.body.irrigation.map((r: { point: string }) => r.point)).toEqual(['relay_1']);
    const notIrrigation = await farmer.post('/api/commands', { device: 'valves', point: 'relay_2', value: true });
    expect(notIrrigation.status).toBe(403);
    expect(sim.getValue(5, 'relay_2')).toBe(0);
    const on = await farmer.post('/api/commands', { device: 'valves', point: 'relay_1', value: true });
    expect(on.status, on.text).toBe(200);
    expect(on.body.ok).toBe(true);
    expect(sim.getValue(5, 'relay_1')).toBe(1);
    // the technician test-reads a device through the running bus driver
    const read = await t.post('/api/devices/soil-a1/read');
    expect(read.status, read.text).toBe(200);
    const moisture = read.body.values.find((v: { point: string }) => v.point === 'moisture');
    expect(moisture).toMatchObject({ quality: 'good', unit: '%' });
    expect((await t.post('/api/devices/nope/read')).status).toBe(404);
    expect(Array.isArray((await t.get('/api/logs?n=5')).body)).toBe(true);
    // the technician may switch any writable point
    const t2 = await t.post('/api/commands', { device: 'valves', point: 'relay_2', value: 'on' });
    expect(t2.status, t2.text).toBe(200);
    expect(sim.getValue(5, 'relay_2')).toBe(1);
  });

  it('rejects hostile input with a clear 4xx and no stack trace', async () => {
    const badJson = await t.req('POST', '/api/commands', { raw: '{"device": ' });
    expect(badJson.status).toBe(400);
    expect(badJson.body.error).toMatch(/JSON/);
    const huge = await t.req('POST', '/api/config/validate', { raw: JSON.stringify({ text: 'x'.repeat(600 * 1024) }) });
    expect(huge.status).toBe(413);
    const form = await t.req('POST', '/api/commands', {
      raw: 'a=b',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
    for (const p of [
      '/assets/../package.json',
      '/assets/%2e%2e/%2e%2e/package.json',
      '/assets/..%2f..%2fpackage.json',
      '/assets/.hidden',
      '/vendor/package.json',
    ]) {
      const r = await t.get(p);
      expect(r.status, p).toBeGreaterThanOrEqual(400);
      expect(r.status, p).toBeLessThan(500);
      expect(r.text).not.toContain('"name": "langbiang"');
    }
    const range = await t.get('/api/readings?device=soil-a1&point=moisture&from=abc');
    expect(range.status).toBe(400);
  });

  it('serves readings downsampled to a bounded number of points, and live values over SSE', async () => {
    await waitUntil(async () => (await t.get('/api/latest?device=soil-a1')).body.length > 0, 10_000, 'readings');
    const to = Date.now() + 1000;
    const r = await t.get(`/api/readings?device=soil-a1&point=moisture&from=${to - 600_000}&to=${to}&points=20`);
    expect(r.status, r.text).toBe(200);
    expect(r.body.t.length).toBeGreaterThan(0);
    expect(r.body.t.length).toBeLessThanOrEqual(20);
    expect(r.body.unit).toBe('%');
    r.body.t.forEach((_: number, i: number) => {
      expect(r.body.min[i]).toBeLessThanOrEqual(r.body.avg[i]);
      expect(r.body.avg[i]).toBeLessThanOrEqual(r.body.max[i]);
    });

    const ctrl = new AbortController();
    const res = await fetch(`${base}/api/live`, { headers: { cookie: t.cookie }, signal: ctrl.signal });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let got = '';
    while (!got.includes('event: readings')) {
      const { value, done } = await reader.read();
      if (done) break;
      got += new TextDecoder().decode(value);
    }
    ctrl.abort();
    expect(got).toMatch(/event: readings\ndata: \[\["/);
  });

  it('locks a user out after repeated failed logins (429), even with the right password', async () => {
    const c = new ApiClient(base);
    for (let i = 0; i < 5; i++)
      expect((await c.post('/api/login', { user: 'mai', password: `wrong-${i}` })).status).toBe(401);
    const locked = await c.post('/api/login', { user: 'mai', password: 'ruong-dau-1' });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    // the existing session of that user is not affected
    expect((await farmer.get('/api/panel')).status).toBe(200);
  });

  it('counts parallel logins as they start, caps the password hashes, and answers a bad escape with 400', async () => {
    const c = new ApiClient(base);
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => c.post('/api/login', { user: 'ghost', password: `guess-${i}` })),
    );
    const statuses = answers.map((a) => a.status);
    // five tries for (ghost, this address); the others are turned away before any hash is made
    expect(statuses.filter((s) => s === 401).length + statuses.filter((s) => s === 503).length).toBe(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(3);
    const bad = await t.get('/api/devices/%E0%A4%A');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: expect.stringMatching(/malformed percent-escape/) });
  });

  it('an API token reads /metrics (Prometheus) but cannot change anything', async () => {
    const created = await t.post('/api/tokens', { label: 'prometheus' });
    expect(created.status).toBe(200);
    const token = created.body.token as string;
    const auth = { authorization: `Bearer ${token}` };
    const m = await new ApiClient(base).get('/metrics', auth);
    expect(m.status).toBe(200);
    expect(m.text).toMatch(/langbiang_device_polls_total\{[^}]*device="soil-a1"[^}]*\} [1-9]/);
    expect(m.text).toMatch(/langbiang_sync_backlog_readings/);
    expect(m.text).toMatch(/langbiang_http_requests_total/);
    expect(m.text).toMatch(/langbiang_bus_queue_depth/);
    expect((await new ApiClient(base).get('/api/devices', auth)).status).toBe(200);
    const write = await new ApiClient(base).req('POST', '/api/commands', {
      body: { device: 'valves', point: 'relay_1', value: false },
      headers: auth,
    });
    expect(write.status).toBe(403);
    expect(
      (await new ApiClient(base).get('/metrics', { authorization: `Bearer ${token.slice(0, -2)}xx` })).status,
    ).toBe(401);
  });

  it('validates a config with key paths, applies a good one through its watch, and rolls back ones that fail', async () => {
    const fileText = readFileSync(file, 'utf8');
    const cur = await t.get('/api/config');
    expect(cur.body).toMatchObject({ editable: true, origin: 'file', applying: false, apply: null });
    const bad = await t.post('/api/config/validate', {
      text: cur.body.text.replace('interval: 300ms', 'interval: soon'),
    });
    expect(bad.body.ok).toBe(false);
    expect(bad.body.problems[0].path).toBe('devices.0.interval');
    expect(bad.body.problems[0].line).toBeGreaterThan(0);
    // invalid: 422 at once, nothing changes
    const badApply = await t.post('/api/config/apply', { text: 'gateway: { id: "NO SPACES" }' });
    expect(badApply.status).toBe(422);
    expect(badApply.body.problems[0].path).toBe('gateway.id');
    // valid YAML, but a config change may not rename the gateway (its store and the city's records)
    const renamed = configText(dir, sim.port, port).replace('id: dl-http-test', 'id: dl-http-other');
    const refused = await t.post('/api/config/apply', { text: renamed });
    expect(refused.status).toBe(422);
    expect(refused.body.problems[0]).toMatchObject({ path: 'gateway.id', line: 1 });
    expect(refused.body.problems[0].message).toMatch(/cannot change from dl-http-test to dl-http-other/);
    expect((await t.get('/api/config/apply')).body).toEqual({ applying: false, apply: null });

    // a good change: the device gets a new name; 202 at once, then it runs on probation
    const good = configText(dir, sim.port, port).replace('name: "Đất A1"', 'name: "Đất luống A1"');
    const accepted = await t.post('/api/config/apply', { text: good });
    expect(accepted.status, accepted.text).toBe(202);
    expect(accepted.body.status).toMatchObject({ state: 'applying', source: 'http', actor: 'tech' });
    const id = accepted.body.id as string;
    const watching = await waitUntil(
      async () => {
        const a = (await t.get(`/api/config/apply/${id}`)).body;
        return a?.phase === 'watching' ? a : undefined;
      },
      20_000,
      'the new config to run on probation',
    );
    expect(watching).toMatchObject({ state: 'applying', watchMs: 2500 });
    expect(Date.parse(watching.watchUntil)).toBeGreaterThan(Date.parse(watching.startedAt));
    // the session survived the restart; the new config runs, on trial; a second change must wait
    expect((await t.get('/api/devices/soil-a1')).body.name).toBe('Đất luống A1');
    expect((await t.get('/api/config')).body).toMatchObject({ origin: 'trial', by: 'tech', applying: true });
    const second = await t.post('/api/config/apply', { text: good });
    expect(second.status).toBe(409);
    expect(second.body.error).toMatch(/already being applied/);
    const applied = await waitUntil(
      async () => {
        const a = (await t.get(`/api/config/apply/${id}`)).body;
        return a?.state !== 'applying' ? a : undefined;
      },
      20_000,
      'the watch to end',
    );
    expect(applied, JSON.stringify(applied)).toMatchObject({ state: 'applied', problems: [] });
    expect((await t.get('/api/config/apply')).body).toMatchObject({ applying: false, apply: { id, state: 'applied' } });
    // kept under the data directory; the config file itself is never written
    expect(readFileSync(file, 'utf8')).toBe(fileText);
    expect(existsSync(`${file}.prev`)).toBe(false);
    const rc = join(dir, 'data', 'remote-config');
    expect(readFileSync(join(rc, 'active.yaml'), 'utf8')).toBe(good);
    expect(JSON.parse(readFileSync(join(rc, 'state.json'), 'utf8'))).toMatchObject({
      applied: { source: 'http', actor: 'tech' },
      pending: null,
    });
    const now = (await t.get('/api/config')).body;
    expect(now).toMatchObject({ origin: 'applied', by: 'tech', applying: false });
    expect(now.text).toBe(good);

    const finish = async (what: string) => {
      // the server restarts during a change: connection errors just mean "ask again"
      return waitUntil(
        async () => {
          const a = (await t.get('/api/config/apply')).body;
          return a?.apply && a.apply.state !== 'applying' ? a.apply : undefined;
        },
        20_000,
        what,
      );
    };

    // a change that cannot start (its port is taken) is rolled back at once to the one that worked
    const blocker = net.createServer();
    const blockedPort = await freePort();
    await new Promise<void>((r) => blocker.listen(blockedPort, '127.0.0.1', () => r()));
    try {
      const broken = good.replace(`port: ${port}`, `port: ${blockedPort}`);
      const r = await t.post('/api/config/apply', { text: broken });
      expect(r.status, r.text).toBe(202);
      const rolled = await finish('the rollback');
      expect(rolled.id).toBe(r.body.id);
      expect(rolled.state).toBe('rolled_back');
      expect(rolled.problems[0]).toMatch(/^the new config did not start: .*(EADDRINUSE|in use)/);
    } finally {
      blocker.close();
    }
    // a change whose bus does not open is run, watched, and rolled back by itself
    const noBus = good.replace(
      'buses:\n',
      'buses:\n  - { id: rs485-9, type: modbus-rtu, port: /dev/ttyLANGBIANG-NONE, baudRate: 9600 }\n',
    );
    expect(noBus).toContain('rs485-9');
    const r2 = await t.post('/api/config/apply', { text: noBus });
    expect(r2.status, r2.text).toBe(202);
    const rolled2 = await finish('the rollback after the watch');
    expect(rolled2.id).toBe(r2.body.id);
    expect(rolled2.state).toBe('rolled_back');
    expect(rolled2.problems).toEqual([expect.stringMatching(/^bus rs485-9 is not open/)]);
    expect(readFileSync(file, 'utf8')).toBe(fileText);
    expect(readFileSync(join(rc, 'active.yaml'), 'utf8')).toBe(good);
    expect((await t.get('/api/devices/soil-a1')).body.name).toBe('Đất luống A1');

    // every outcome is a `config` event for the city, beside the panel's command audit
    const ev = (await t.get('/api/events')).body.events as { kind: string; data: Record<string, unknown> }[];
    const config = ev.filter((e) => e.kind === 'config').map((e) => e.data);
    expect(config.map((d) => d.outcome)).toEqual(['applied', 'rolled_back', 'rolled_back']);
    expect(config.every((d) => d.source === 'http' && d.actor === 'tech' && d.version === null)).toBe(true);
    expect(ev.some((e) => e.kind === 'command' && JSON.stringify(e.data).includes('mai'))).toBe(true);
    const sync = (await t.get('/api/sync')).body;
    expect(sync.configured).toBe(false);
    expect(sync.outbox.backlog).toBe(sync.outbox.lastSeq); // nothing is acknowledged without a broker

    // polling goes on under the kept config
    const before = (await t.get('/healthz')).body.lastSeq;
    await waitUntil(async () => (await t.get('/healthz')).body.lastSeq > before, 10_000, 'polling after the rollback');

    // the next start runs the kept config, until a technician edits the file: then the file wins
    const base = loadConfigOrThrow(file).config;
    expect(effectiveConfig(file, base, log).config.devices[0]!.name).toBe('Đất luống A1');
    writeFileSync(file, `${fileText}# edited on site\n`);
    expect(effectiveConfig(file, loadConfigOrThrow(file).config, log).config.devices[0]!.name).toBe('Đất A1');
    expect(existsSync(join(rc, 'active.yaml'))).toBe(false);
  });
});
