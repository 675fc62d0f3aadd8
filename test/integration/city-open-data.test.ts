import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NATIVE_VERSION } from '../../cloud-sync/protocol/native.js';
import type { WireReading } from '../../cloud-sync/protocol/types.js';
import { openReceiverStore } from '../../cloud-sync/receiver/index.js';
import { runCli, startCli } from '../helpers/cli.js';

/**
 * Open data from a receiver database: the files are recomputed here with SQL straight from the
 * database (not through the code under test), the catalog is checked against the DCAT-AP
 * mandatory properties (test/fixtures/dcat-ap), and no file carries a field, point, device or
 * gateway the config did not name.
 */

let dir: string;
let db: string;
let configs: string;
const DAY = 86_400_000;
const yesterday0 = Math.floor(Date.now() / DAY) * DAY - DAY;
const YDAY = new Date(yesterday0).toISOString().slice(0, 10);

const GATEWAY = `gateway: { id: gw-centre, location: { lat: 11.94, lon: 108.44 } }
buses: [ { id: tcp-1, type: modbus-tcp, host: 10.0.0.9, port: 502 } ]
devices:
  - { id: thm-1, profile: xy-md02, bus: tcp-1, unit: 1, interval: 30s }
  - { id: light-meter-1, profile: eastron-sdm120, bus: tcp-1, unit: 2, interval: 30s }
`;

const OPEN_DATA = `catalog:
  title: Dữ liệu mở thành phố Đà Lạt
  description: Aggregated measurements of the city's sensors.
  baseUrl: https://data.example.org/dalat/
publisher: { name: Ủy ban nhân dân thành phố Đà Lạt, url: https://example.org/dalat }
datasets:
  - id: air-hourly
    title: Air temperature and humidity, hourly
    description: Hourly statistics of the air sensors.
    keywords: [air, temperature]
    theme: ENVI
    profiles: [xy-md02]
    points: [temperature, humidity]
    interval: hour
    groupBy: [gateway, device]
    aggregates: [mean, min, max, count]
  - id: streetlight-energy-daily
    title: Street lighting energy, daily
    description: Energy used by the lighting cabinets per day.
    theme: ENER
    devices: [light-meter-*]
    points: [import_energy]
    interval: day
    groupBy: [gateway, device]
    aggregates: [delta]
    unit: kWh
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lb-opendata-'));
  db = join(dir, 'rx.db');
  configs = join(dir, 'gateways');
  mkdirSync(configs);
  writeFileSync(join(configs, 'centre.yaml'), GATEWAY);
  writeFileSync(join(dir, 'open-data.yaml'), OPEN_DATA);
  const store = await openReceiverStore(db);
  // gw-centre (configured) and gw-far (not: its thm-1 has no known profile and is not taken)
  for (const gateway of ['gw-centre', 'gw-far']) {
    const readings: WireReading[] = [];
    let seq = 0;
    const push = (device: string, point: string, ts: number, value: number | null, quality = 'good') =>
      readings.push({ seq: ++seq, device, point, ts, value, unit: null, quality: quality as 'good' });
    for (let m = 0; m < 24 * 60; m += 7) {
      const ts = yesterday0 + m * 60_000 + 1234;
      push('thm-1', 'temperature', ts, Math.fround(15 + Math.sin(m / 100) * 6));
      push('thm-1', 'humidity', ts, 70 + (m % 13));
      push('light-meter-1', 'import_energy', ts, 1000 + m / 10);
      // a point nobody named, and values that must not count
      push('light-meter-1', 'voltage', ts, 231.4321);
      if (m % 97 === 0) push('thm-1', 'temperature', ts + 1, 987.654, 'timeout');
      if (m % 89 === 0) push('thm-1', 'humidity', ts + 2, null);
    }
    await store.writeTelemetry(
      { v: NATIVE_VERSION, gateway, epoch: 'e1', firstSeq: 1, lastSeq: seq, readings },
      Date.now(),
    );
  }
  await store.close();
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function csvRows(text: string): Record<string, string>[] {
  const [head, ...lines] = text.trim().split('\n');
  const fields = head!.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [fields[i]!, v])));
}

describe('langbiang open-data build', () => {
  let out: string;

  beforeAll(async () => {
    out = join(dir, 'public');
    const r = await runCli([
      'open-data',
      'build',
      '--receiver-db',
      db,
      '--config',
      join(dir, 'open-data.yaml'),
      '--out',
      out,
      '--gateway-configs',
      configs,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${YDAY}: air-hourly 48 rows, streetlight-energy-daily 2 rows`);
  });

  it('air-hourly equals an independent SQL aggregation of the receiver database', () => {
    const sql = new Database(db, { readonly: true });
    const want = sql
      .prepare(
        `SELECT (ts / 3600000) * 3600000 AS p, gateway, device, point, avg(value_num) AS mean, min(value_num) AS min,
                max(value_num) AS max, count(*) AS count
         FROM readings WHERE gateway = 'gw-centre' AND device = 'thm-1' AND point IN ('temperature', 'humidity')
           AND quality = 'good' AND value_num IS NOT NULL AND ts BETWEEN ? AND ?
         GROUP BY p, gateway, device, point ORDER BY p, gateway, device, point`,
      )
      .all(yesterday0, yesterday0 + DAY - 1) as {
      p: number;
      gateway: string;
      device: string;
      point: string;
      mean: number;
      min: number;
      max: number;
      count: number;
    }[];
    sql.close();
    const csv = csvRows(readFileSync(join(out, 'air-hourly', `${YDAY}.csv`), 'utf8'));
    const json = JSON.parse(readFileSync(join(out, 'air-hourly', `${YDAY}.json`), 'utf8')) as {
      fields: string[];
      rows: Record<string, unknown>[];
    };
    expect(want.length).toBe(48);
    expect(csv.length).toBe(want.length);
    expect(json.rows.length).toBe(want.length);
    want.forEach((w, i) => {
      const c = csv[i]!;
      const j = json.rows[i]!;
      expect([c.period, c.gateway, c.device, c.point]).toEqual([
        new Date(w.p).toISOString(),
        w.gateway,
        w.device,
        w.point,
      ]);
      expect([j.period, j.gateway, j.device, j.point]).toEqual([c.period, c.gateway, c.device, c.point]);
      for (const k of ['mean', 'min', 'max', 'count'] as const) {
        expect(Number(c[k])).toBeCloseTo(w[k], 9);
        expect(j[k] as number).toBeCloseTo(w[k], 9);
      }
    });
  });

  it('the energy dataset is each meter’s daily increase, recomputed from the database', () => {
    const sql = new Database(db, { readonly: true });
    const want = sql
      .prepare(
        `SELECT gateway, device, max(value_num) - min(value_num) AS delta FROM readings
         WHERE device LIKE 'light-meter-%' AND point = 'import_energy' AND quality = 'good' AND ts BETWEEN ? AND ?
         GROUP BY gateway, device ORDER BY gateway`,
      )
      .all(yesterday0, yesterday0 + DAY - 1) as { gateway: string; delta: number }[];
    sql.close();
    const csv = csvRows(readFileSync(join(out, 'streetlight-energy-daily', `${YDAY}.csv`), 'utf8'));
    // the same device id on two gateways: two meters, two rows
    expect(csv.map((r) => [r.gateway, Number(r.delta)])).toEqual(want.map((w) => [w.gateway, w.delta]));
    expect(csv.every((r) => r.period === `${YDAY}T00:00:00.000Z` && r.device === 'light-meter-1')).toBe(true);
  });

  it('never carries a field, point or gateway the config did not name', () => {
    for (const [id, fields] of [
      ['air-hourly', ['period', 'gateway', 'device', 'point', 'mean', 'min', 'max', 'count']],
      ['streetlight-energy-daily', ['period', 'gateway', 'device', 'point', 'delta']],
    ] as const) {
      const csv = readFileSync(join(out, id, `${YDAY}.csv`), 'utf8');
      expect(csv.split('\n')[0]).toBe(fields.join(','));
      const json = JSON.parse(readFileSync(join(out, id, `${YDAY}.json`), 'utf8')) as { rows: object[] };
      for (const row of json.rows) expect(Object.keys(row)).toEqual([...fields]);
      for (const text of [csv, JSON.stringify(json)]) {
        expect(text).not.toMatch(/voltage|231\.4321|987\.654/);
      }
      // gw-far is not in the gateway configs: its thermometer has no known profile
      if (id === 'air-hourly') expect(csv).not.toMatch(/gw-far/);
    }
    expect(readdirSync(out).sort()).toEqual(['air-hourly', 'catalog.jsonld', 'streetlight-energy-daily']);
  });

  it('writes a DCAT-AP catalog that validates against the mandatory properties', () => {
    const schema = JSON.parse(
      readFileSync(new URL('../fixtures/dcat-ap/catalog.schema.json', import.meta.url), 'utf8'),
    ) as object;
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    const catalog = JSON.parse(readFileSync(join(out, 'catalog.jsonld'), 'utf8')) as Record<string, unknown>;
    const validate = ajv.compile(schema);
    expect(validate(catalog) ? [] : validate.errors).toEqual([]);
    const at = (o: unknown, ...path: (string | number)[]): unknown =>
      path.reduce<unknown>((x, k) => (x as Record<string | number, unknown>)[k], o);
    const datasets = catalog['dcat:dataset'] as unknown[];
    expect(datasets.map((d) => at(d, 'dct:identifier'))).toEqual(['air-hourly', 'streetlight-energy-daily']);
    expect(at(datasets[0], 'dct:license', '@id')).toBe('https://creativecommons.org/licenses/by/4.0/');
    expect(at(datasets[0], 'dct:temporal', 'dcat:startDate', '@value')).toBe(YDAY);
    // spatial coverage from the configured gateway's location (no bbox in the config)
    expect(at(datasets[0], 'dct:spatial', 'dcat:bbox', '@value')).toBe(
      'POLYGON((108.44 11.94, 108.44 11.94, 108.44 11.94, 108.44 11.94, 108.44 11.94))',
    );
    expect((at(datasets[1], 'dcat:distribution') as unknown[]).map((d) => at(d, 'dcat:downloadURL', '@id'))).toEqual([
      `https://data.example.org/dalat/streetlight-energy-daily/${YDAY}.csv`,
      `https://data.example.org/dalat/streetlight-energy-daily/${YDAY}.json`,
    ]);
    // every compact IRI's prefix is declared in the context (a JSON-LD processor would drop it otherwise)
    const prefixes = new Set(Object.keys(catalog['@context'] as object));
    const used = JSON.stringify(catalog).match(/"([a-z]+):[A-Za-z]+"/g) ?? [];
    for (const u of used) expect(prefixes).toContain(u.slice(1, u.indexOf(':')));
  });

  it('serves the directory read-only: the catalog and the files, nothing outside it', async () => {
    const srv = startCli(['open-data', 'serve', '--out', out, '--port', '0']);
    try {
      await srv.waitFor(/serving .* on http:\/\/127\.0\.0\.1:\d+\//);
      const base = /on (http:\/\/127\.0\.0\.1:\d+)\//.exec(srv.output())![1]!;
      const cat = await fetch(`${base}/`);
      expect(cat.status).toBe(200);
      expect(cat.headers.get('content-type')).toBe('application/ld+json; charset=utf-8');
      expect(cat.headers.get('access-control-allow-origin')).toBe('*');
      expect(await cat.text()).toBe(readFileSync(join(out, 'catalog.jsonld'), 'utf8'));
      const csv = await fetch(`${base}/air-hourly/${YDAY}.csv`);
      expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      expect(await csv.text()).toBe(readFileSync(join(out, 'air-hourly', `${YDAY}.csv`), 'utf8'));
      // files beside the directory (the receiver database, anything) are never reachable
      writeFileSync(join(dir, 'secret.json'), '{"password":"x"}');
      for (const path of ['/../secret.json', '/%2e%2e/secret.json', '/..%2fsecret.json', '/air-hourly/', '/rx.db'])
        expect((await fetch(`${base}${path}`)).status, path).toBe(404);
      expect((await fetch(`${base}/catalog.jsonld`, { method: 'POST' })).status).toBe(405);
    } finally {
      srv.child.kill('SIGTERM');
    }
  });
});

it('open-data build names the key of a config error, and refuses profiles without gateway configs', async () => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, OPEN_DATA.replace('aggregates: [delta]', 'aggregates: [median]'));
  const r = await runCli(['open-data', 'build', '--receiver-db', db, '--config', bad, '--out', join(dir, 'o')]);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/datasets\.1\.aggregates\.0: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  const noConfigs = await runCli([
    'open-data',
    'build',
    '--receiver-db',
    db,
    '--config',
    join(dir, 'open-data.yaml'),
    '--out',
    join(dir, 'o'),
  ]);
  expect(noConfigs.code).toBe(1);
  expect(noConfigs.stderr).toMatch(/^langbiang: datasets\.0\.profiles: selecting by profile needs --gateway-configs/);
});

it('the shipped example config loads, and names only profiles and points that exist', async () => {
  const { loadOpenDataConfig } = await import('../../cloud-sync/city/open-data-config.js');
  const { parse } = await import('yaml');
  const cfg = loadOpenDataConfig(new URL('../../deploy/open-data.example.yaml', import.meta.url).pathname);
  expect(cfg.license).toBe('https://creativecommons.org/licenses/by/4.0/');
  for (const d of cfg.datasets) {
    for (const profile of d.profiles ?? []) {
      const p = parse(readFileSync(new URL(`../../hardware/profiles/${profile}.yaml`, import.meta.url), 'utf8')) as {
        points: { name: string }[];
      };
      const names = p.points.map((x) => x.name);
      for (const point of d.points) expect(names, `${d.id}: ${profile}`).toContain(point);
    }
  }
});
