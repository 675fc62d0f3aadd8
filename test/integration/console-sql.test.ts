import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../gateway/store/index.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { ApiClient } from '../helpers/http-client.js';
import { freePort } from '../helpers/ports.js';

/**
 * The console's SQL box over HTTP, against `langbiang start` as shipped (polling a Modbus
 * simulator): who may ask, what is refused, the row limit, and the time limit — a query that
 * would run forever is stopped after 5 s while the gateway goes on polling and storing.
 */

const TECH = { name: 'lan', password: 'ky-thuat-vien-1' };
const FARMER = { name: 'hoa', password: 'nong-dan-123' };
const FOREVER = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';

describe('POST /api/sql', () => {
  let dir: string;
  let sim: ModbusSimulator;
  let gw: RunningCli;
  let base: string;
  let tech: ApiClient;
  let farmer: ApiClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'langbiang-console-sql-'));
    sim = await ModbusSimulator.tcp({ units: [{ unit: 1, profile: loadProfile('comwintop-cwt-soil') }] });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `gateway: { id: dl-gw-sql, dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: sim, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 300ms }
devices:
  - { id: soil-a1, profile: comwintop-cwt-soil, bus: sim, unit: 1, interval: 200ms }
storage: { batchMaxDelay: 200ms }
panel: { port: ${port}, host: 127.0.0.1 }
`,
    );
    for (const [u, role] of [
      [TECH, 'technician'],
      [FARMER, 'farmer'],
    ] as const) {
      const made = await runCli(['user', 'add', u.name, '--role', role, '--config', config], {
        input: `${u.password}\n`,
      });
      expect(made.code, made.stderr).toBe(0);
    }
    gw = startCli(['start', '--config', config]);
    await gw.waitFor('http listening', 20_000);
    tech = new ApiClient(base);
    await tech.login(TECH.name, TECH.password);
    farmer = new ApiClient(base);
    await farmer.login(FARMER.name, FARMER.password);
    // some readings to query
    await waitUntil(async () => (await tech.get('/api/latest')).body?.length > 0, 10_000, 'first readings');
  }, 60_000);

  afterAll(async () => {
    gw?.child.kill('SIGKILL');
    await gw?.exited;
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const sql = (c: ApiClient, q: string) => c.post('/api/sql', { sql: q });

  it('answers 401 without a session, 403 to a farmer and to a request without the CSRF token', async () => {
    const anon = await new ApiClient(base).post('/api/sql', { sql: 'SELECT 1' });
    expect(anon.status).toBe(401);
    const f = await sql(farmer, 'SELECT 1');
    expect(f.status).toBe(403);
    expect(f.body.error).toBe('this needs the technician role');
    const noCsrf = await tech.req('POST', '/api/sql', { body: { sql: 'SELECT 1' }, csrf: false });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.body.error).toMatch(/CSRF/);
    const crossSite = await tech.req('POST', '/api/sql', { body: { sql: 'SELECT 1' }, origin: 'http://evil.example' });
    expect(crossSite.status).toBe(403);
  });

  it('refuses anything but one SELECT, each with one sentence', async () => {
    const cases: [string, RegExp][] = [
      ['', /sql is required/],
      ["DELETE FROM events WHERE kind = 'gap'", /^SQL: table events may not be modified$/],
      ['INSERT INTO events(kind) VALUES (1) RETURNING id', /^SQL: table events may not be modified$/],
      ['CREATE TABLE t(x)', /only queries that return rows/],
      ["ATTACH DATABASE '/tmp/x.db' AS x", /only queries that return rows/],
      ['SELECT 1; SELECT 2', /^SQL: .*more than one statement/],
      ['SELEC device FROM readings', /^SQL: near "SELEC": syntax error/],
      ['SELECT nope FROM readings', /^SQL: no such column: nope/],
      ["SELECT * FROM readings('soil-a1', 'yesterday')", /readings\(…, from\): "yesterday" is not a time/],
    ];
    for (const [q, why] of cases) {
      const r = await sql(tech, q);
      expect(r.status, q).toBe(400);
      expect(r.body.error, q).toMatch(why);
      expect(r.body.error, q).not.toMatch(/\n\s+at /);
    }
    expect((await tech.post('/api/sql', { query: 'SELECT 1' })).status).toBe(400);
  });

  it('answers a GROUP BY over the readings the store holds', async () => {
    const r = await sql(
      tech,
      "SELECT device, point, count(*) AS n, min(seq) AS first FROM readings('soil-a1') GROUP BY device, point ORDER BY point",
    );
    expect(r.status, r.text).toBe(200);
    expect(r.body.columns).toEqual(['device', 'point', 'n', 'first']);
    expect(r.body.truncated).toBe(false);
    const points = loadProfile('comwintop-cwt-soil').points.map((p) => p.name);
    expect(r.body.rows.map((row: unknown[]) => row[1])).toEqual([...points].sort());
    for (const row of r.body.rows) {
      expect(row[0]).toBe('soil-a1');
      expect(row[2]).toBeGreaterThan(0);
    }
  });

  it('returns at most 1000 rows and says the rest was cut', async () => {
    const r = await sql(
      tech,
      'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000) SELECT x FROM c',
    );
    expect(r.status, r.text).toBe(200);
    expect(r.body.rows).toHaveLength(1000);
    expect(r.body.rows.at(-1)).toEqual([1000]);
    expect(r.body).toMatchObject({ truncated: true, limit: 1000 });
    const exact = await sql(
      tech,
      'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT x FROM c',
    );
    expect(exact.body.rows).toHaveLength(1000);
    expect(exact.body.truncated).toBe(false);
  });

  it('stops a query that runs forever after 5 s, while polling and storing go on', async () => {
    const before = Date.now();
    let answered = false;
    const running = sql(tech, FOREVER).finally(() => {
      answered = true;
    });
    // meanwhile: the gateway refuses a second query, answers, and keeps storing readings. Until the
    // long query has reached the gateway a second one legitimately runs (a busy machine may take
    // a while to deliver it), so wait for the refusal rather than a fixed second.
    await waitUntil(async () => (await sql(tech, 'SELECT 1')).status === 409, 10_000, 'a second query refused');
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    // it answered while the long query was still running (not once it had been stopped)
    expect(answered).toBe(false);
    const r = await running;
    const after = Date.now();
    expect(r.status, r.text).toBe(408);
    expect(r.body.error).toBe(
      "the query ran longer than 5 s and was stopped; narrow it, e.g. FROM readings('device-id', '-24h')",
    );
    expect(after - before).toBeGreaterThanOrEqual(5000);

    // readings stored during the query: about one poll each 200 ms, none missing
    const store = Store.open({ dataDir: join(dir, 'data'), readonly: true });
    try {
      const during = store
        .query({ device: 'soil-a1', from: before, to: after })
        .filter((x) => x.point === 'moisture' && x.quality === 'good');
      expect(during.length).toBeGreaterThanOrEqual(15);
      const gaps = during.slice(1).map((x, i) => x.ts - during[i]!.ts);
      expect(Math.max(...gaps)).toBeLessThan(1000);
    } finally {
      store.close();
    }

    // the stopped query's thread is gone: the gateway's CPU time rests, and the next query runs
    const pid = gw.child.pid!;
    const cpu = () => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ').slice(11, 13).map(Number);
    const [u0, s0] = cpu();
    await new Promise((r) => setTimeout(r, 1000));
    const [u1, s1] = cpu();
    // clock ticks (100/s): a query still spinning would add ~100 in this second
    expect(u1! + s1! - u0! - s0!).toBeLessThan(60);
    const next = await sql(tech, 'SELECT 1 AS one');
    expect(next.status).toBe(200);
    expect(next.body.rows).toEqual([[1]]);
  }, 40_000);
});
