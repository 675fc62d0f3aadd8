import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTelemetry, NATIVE_VERSION } from '../../cloud-sync/protocol/native.js';
import type { TelemetryBatch, WireReading } from '../../cloud-sync/protocol/types.js';
import { openReceiverStore, Receiver } from '../../cloud-sync/receiver/index.js';
import {
  NgsiLdClient,
  type NgsiLdEntity,
  NgsiLdOutput,
  openNgsiLdSource,
  toKeyValues,
} from '../../cloud-sync/receiver/ngsi-ld/index.js';
import { loadNgsiLdSites } from '../../gateway/cli/ngsi-ld-sites.js';
import { loadConfigFile } from '../../gateway/config/index.js';
import type { DeviceProfile } from '../../gateway/core/point.js';
import type { Reading } from '../../gateway/core/reading.js';
import { Store } from '../../gateway/store/index.js';
import { modelFor, restingValue } from '../../hardware/simulators/value-models.js';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type NgsiLdBroker, startNgsiLdBroker } from '../helpers/ngsi-ld-broker.js';
import { type Postgres, startPostgres } from '../helpers/postgres.js';
import { schemaProblems } from '../helpers/smart-data-models.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'configs');

let mosq: Mosquitto;
let ngsi: NgsiLdBroker;
let dir: string;
let configs: string;
const children: RunningCli[] = [];

/**
 * A third gateway: a single-phase meter (DeviceMeasurement by its profile's choice) and a flow
 * sensor of a site profile (in the config's profilesDir) that has no ngsiLd block: generic.
 */
const METER_GW = `gateway: { id: dl-gw-meter, location: { lat: 11.95, lon: 108.44 }, profilesDir: site-profiles }
buses: [ { id: tcp-1, type: modbus-tcp, host: 10.0.0.9, port: 502 } ]
devices:
  - { id: pump-meter, profile: eastron-sdm120, bus: tcp-1, unit: 1, interval: 30s }
  - { id: flow-1, profile: acme-flow, bus: tcp-1, unit: 2, interval: 30s }
`;
const SITE_PROFILE = `manufacturer: Acme
model: FL-1 flow meter
source: { title: Acme FL-1 manual }
points:
  - { name: flow_rate, function: input, address: 0, type: u16, scale: 0.1, unit: "m/s", min: 0, max: 20 }
  - { name: total_volume, function: input, address: 1, type: u32, unit: "m3" }
  - { name: pulses, function: input, address: 3, type: u16, unit: "imp" }
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'langbiang-ngsi-'));
  configs = join(dir, 'gateways');
  mkdirSync(configs);
  copyFileSync(join(FIXTURES, 'greenhouse.yaml'), join(configs, 'greenhouse.yaml'));
  copyFileSync(join(FIXTURES, 'cabinet.yaml'), join(configs, 'cabinet.yaml'));
  writeFileSync(join(configs, 'meter.yaml'), METER_GW);
  mkdirSync(join(configs, 'site-profiles'));
  writeFileSync(join(configs, 'site-profiles', 'acme-flow.yaml'), SITE_PROFILE);
  [mosq, ngsi] = await Promise.all([startMosquitto(), startNgsiLdBroker()]);
}, 60_000);

afterAll(async () => {
  for (const c of children) c.child.kill('SIGKILL');
  await ngsi?.stop();
  await mosq?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface SimDevice {
  gateway: string;
  device: string;
  profile: DeviceProfile;
  points: string[];
}

/** Every device of the three gateway configs, with the points its config polls. */
function fleet(): SimDevice[] {
  const out: SimDevice[] = [];
  for (const f of ['greenhouse.yaml', 'cabinet.yaml', 'meter.yaml']) {
    const r = loadConfigFile(join(configs, f), { baseDir: configs, checkFiles: false });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    for (const d of r.config.devices) {
      const profile = r.profiles.get(d.profile)!;
      out.push({
        gateway: r.config.gateway.id,
        device: d.id,
        profile,
        points: d.points ?? profile.points.map((p) => p.name),
      });
    }
  }
  return out;
}

const seqs = new Map<string, number>();

/** One poll of each device, valued by the simulators at time t; plus a failed read that must not count. */
function pollBatches(devices: SimDevice[], t: number, bump = 0): TelemetryBatch[] {
  const byGw = new Map<string, WireReading[]>();
  for (const d of devices) {
    const list = byGw.get(d.gateway) ?? [];
    byGw.set(d.gateway, list);
    for (const name of d.points) {
      const p = d.profile.points.find((x) => x.name === name)!;
      let value = modelFor(d.profile, p, 3, t - 3_600_000)?.(t) ?? restingValue(p);
      if (typeof value === 'number' && name === 'moisture') value = Math.round((value + bump) * 10) / 10;
      const seq = (seqs.get(d.gateway) ?? 0) + 1;
      seqs.set(d.gateway, seq);
      list.push({ seq, device: d.device, point: name, ts: t, value, unit: p.unit ?? null, quality: 'good' });
    }
  }
  const out: TelemetryBatch[] = [];
  for (const [gateway, readings] of byGw) {
    // a timed-out read after the poll: a null that must never reach the broker
    const first = readings[0]!;
    const seq = (seqs.get(gateway) ?? 0) + 1;
    seqs.set(gateway, seq);
    readings.push({ ...first, seq, ts: t + 500, value: null, quality: 'timeout' });
    out.push({
      v: NATIVE_VERSION,
      gateway,
      epoch: `epoch-${gateway}`,
      firstSeq: readings[0]!.seq,
      lastSeq: seq,
      readings,
    });
  }
  return out;
}

/** A device no config the city holds knows (a custom profile on a gateway we have no config for). */
function strangerBatch(t: number): TelemetryBatch {
  const seq = (seqs.get('dl-gw-9999') ?? 0) + 1;
  seqs.set('dl-gw-9999', seq + 1);
  return {
    v: NATIVE_VERSION,
    gateway: 'dl-gw-9999',
    epoch: 'e9',
    firstSeq: seq,
    lastSeq: seq + 1,
    readings: [
      { seq, device: 'pump-7', point: 'flow_rate', ts: t, value: 12.5, unit: 'm/s', quality: 'good' },
      { seq: seq + 1, device: 'pump-7', point: 'state', ts: t, value: 'running', unit: null, quality: 'good' },
    ],
  };
}

async function publish(batches: TelemetryBatch[]): Promise<void> {
  const c = await mqtt.connectAsync(mosq.url, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    clientId: `pub-${Date.now()}`,
  });
  try {
    for (const b of batches)
      await c.publishAsync(`langbiang/v1/${b.gateway}/telemetry`, encodeTelemetry(b), { qos: 1 });
  } finally {
    await c.endAsync();
  }
}

/** The entity id each device must produce: a model entity, or one DeviceMeasurement per point. */
function expectedIds(devices: SimDevice[]): Map<string, string> {
  const ids = new Map<string, string>();
  for (const d of devices) {
    const m = d.profile.ngsiLd;
    if (m && m.type !== 'DeviceMeasurement') {
      if ((m.requires ?? []).every((p) => d.points.includes(p)))
        ids.set(`urn:ngsi-ld:${m.type}:${d.gateway}:${d.device}`, m.type);
    } else {
      for (const p of d.points) {
        if (m && !m.attributes[p]) continue;
        ids.set(`urn:ngsi-ld:DeviceMeasurement:${d.gateway}:${d.device}:${p}`, 'DeviceMeasurement');
      }
    }
  }
  return ids;
}

const moistureOf = (e: NgsiLdEntity | undefined) => (e ? toKeyValues(e).soilMoistureVwc : undefined);

describe('the strict NGSI-LD test broker refuses what the API refuses', () => {
  const ok = { id: 'urn:ngsi-ld:Thing:1', type: 'Thing', '@context': ['https://example.org/c.jsonld'] };
  const post = (path: string, body: unknown, headers: Record<string, string>, method = 'POST') =>
    fetch(`${ngsi.url}${path}`, { method, headers, body: method === 'GET' ? undefined : JSON.stringify(body) });
  const UPSERT = '/ngsi-ld/v1/entityOperations/upsert';
  const LD = { 'Content-Type': 'application/ld+json' };

  it('takes a good batch and refuses the bad ones', async () => {
    expect((await post(UPSERT, [ok], LD)).status).toBe(201);
    expect((await post('/ngsi-ld/v1/entities', [ok], LD)).status).toBe(404);
    expect((await post(UPSERT, undefined, LD, 'GET')).status).toBe(405);
    expect((await post(UPSERT, [ok], { 'Content-Type': 'text/plain' })).status).toBe(415);
    // application/json: the context comes in a Link header, never in the body
    expect((await post(UPSERT, [ok], { 'Content-Type': 'application/json' })).status).toBe(400);
    const { '@context': _c, ...bare } = ok;
    const link = `<https://example.org/c.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`;
    expect((await post(UPSERT, [bare], { 'Content-Type': 'application/json', Link: link })).status).toBe(204);
    expect((await post(UPSERT, [bare], LD)).status).toBe(400);
    expect((await post(UPSERT, [{ ...ok, id: 'not a uri' }], LD)).status).toBe(400);
    expect((await post(UPSERT, [{ ...ok, type: undefined }], LD)).status).toBe(400);
    expect((await post(UPSERT, [{ ...ok, level: 3 }], LD)).status).toBe(400);
    expect(
      (await post(UPSERT, [{ ...ok, level: { type: 'Property', value: 3, observedAt: 'today' } }], LD)).status,
    ).toBe(400);
    expect((await post(UPSERT, [{ ...ok, owner: { type: 'Relationship', object: 'bob' } }], LD)).status).toBe(400);
    expect((await post(UPSERT, [], LD)).status).toBe(400);
  });

  it('and the client sees a refused batch as refused, a down broker as retryable', async () => {
    const client = new NgsiLdClient({ url: ngsi.url });
    const rejected = await client.upsert([{ id: 'urn:ngsi-ld:Thing:2', type: 'Thing' } as NgsiLdEntity]);
    expect(rejected).toEqual([{ id: 'urn:ngsi-ld:Thing:2', reason: expect.stringMatching(/@context/) }]);
    const down = new NgsiLdClient({ url: 'http://127.0.0.1:9', timeoutMs: 2000 });
    await expect(down.upsert([ok as NgsiLdEntity])).rejects.toMatchObject({ code: 'NGSI_LD_UNAVAILABLE' });
  });
});

describe('langbiang receiver --ngsi-ld', () => {
  it('upserts every device as its Smart Data Model entity, catches up after the broker was down, and exports', async () => {
    const devices = fleet();
    const db = join(dir, 'receiver.db');
    const recv = startCli([
      'receiver',
      '--broker',
      mosq.url,
      '--db',
      db,
      '--client-id',
      'recv-ngsi',
      '--exclusive',
      '--stats-interval',
      '0',
      '--ngsi-ld',
      ngsi.url,
      '--tenant',
      'dalat',
      '--gateway-configs',
      configs,
    ]);
    children.push(recv);
    await recv.waitFor('receiver subscribed', 20_000);
    await recv.waitFor('NGSI-LD output started');

    const t1 = Date.now() - 60_000;
    await publish([...pollBatches(devices, t1), strangerBatch(t1)]);
    const want = expectedIds(devices);
    want.set('urn:ngsi-ld:DeviceMeasurement:dl-gw-9999:pump-7:flow_rate', 'DeviceMeasurement');
    want.set('urn:ngsi-ld:DeviceMeasurement:dl-gw-9999:pump-7:state', 'DeviceMeasurement');
    const state = () => ngsi.tenants.get('dalat') ?? new Map<string, NgsiLdEntity>();
    await waitUntil(() => [...want.keys()].every((id) => state().has(id)), 30_000, 'every entity at the broker');

    // every request: the batch upsert endpoint, JSON-LD with @context in each entity, the tenant
    const ours = ngsi.requests.filter((r) => r.headers['ngsild-tenant'] === 'dalat');
    expect(ours.length).toBeGreaterThan(0);
    for (const r of ours) {
      expect(r.method).toBe('POST');
      expect(r.url).toBe('/ngsi-ld/v1/entityOperations/upsert?options=update');
      expect(r.headers['content-type']).toBe('application/ld+json');
      expect([201, 204]).toContain(r.status);
    }
    // every entity sent validates against its official schema, and has the type its profile maps to
    const sent = ours.flatMap((r) => JSON.parse(r.body) as NgsiLdEntity[]);
    for (const e of sent) {
      expect(schemaProblems(e)).toEqual([]);
      expect(e.type).toBe(want.get(e.id));
    }
    expect(new Set(sent.map((e) => e.type))).toEqual(
      new Set([
        'AgriParcelRecord',
        'WeatherObserved',
        'DeviceMeasurement',
        'StreetlightControlCabinet',
        'Streetlight',
        'TrafficFlowObserved',
      ]),
    );
    // location from the gateway's config; observedAt the reading's time
    const lamp = state().get('urn:ngsi-ld:Streetlight:dl-cab-0107:dali')!;
    expect(lamp.location).toEqual({ type: 'GeoProperty', value: { type: 'Point', coordinates: [108.4452, 11.9367] } });
    expect((lamp.status as { observedAt: string }).observedAt).toBe(new Date(t1).toISOString());
    const soil = () => state().get('urn:ngsi-ld:AgriParcelRecord:dl-gw-0001:soil-a1');
    const m1 = moistureOf(soil()) as number;
    expect(m1).toBeGreaterThan(0);
    expect(m1).toBeLessThanOrEqual(1);
    expect(state().get('urn:ngsi-ld:DeviceMeasurement:dl-gw-9999:pump-7:flow_rate')!.location).toBeUndefined();
    // a site profile without an ngsiLd block: generic, with its gateway's location and UN/CEFACT unit
    const flow = state().get('urn:ngsi-ld:DeviceMeasurement:dl-gw-meter:flow-1:flow_rate')!;
    expect(flow.location).toEqual({ type: 'GeoProperty', value: { type: 'Point', coordinates: [108.44, 11.95] } });
    expect((flow.numValue as { unitCode: string }).unitCode).toBe('MTS');
    expect(toKeyValues(state().get('urn:ngsi-ld:DeviceMeasurement:dl-gw-meter:flow-1:total_volume')!)).toMatchObject({
      unit: 'MTQ',
      controlledProperty: 'total_volume',
    });
    // a unit without a UN/CEFACT code we know travels as the profile wrote it, without unitCode
    const pulses = state().get('urn:ngsi-ld:DeviceMeasurement:dl-gw-meter:flow-1:pulses')!;
    expect(toKeyValues(pulses).unit).toBe('imp');
    expect((pulses.numValue as { unitCode?: string }).unitCode).toBeUndefined();

    // the context broker goes down; readings keep coming and are stored; it comes back: caught up
    await ngsi.stop();
    const t2 = t1 + 30_000;
    const phase2 = pollBatches(devices, t2, 7);
    const v2 = phase2
      .flatMap((b) => b.readings)
      .find((r) => r.device === 'soil-a1' && r.point === 'moisture' && r.quality === 'good')!.value as number;
    await publish(phase2);
    await recv.waitFor('NGSI-LD upsert failed', 30_000);
    await ngsi.start();
    await waitUntil(() => moistureOf(soil()) !== m1, 40_000, 'the catch-up after the broker came back');
    await recv.waitFor('NGSI-LD upsert works again', 5000);
    expect(moistureOf(soil())).toBeCloseTo(v2 / 100, 9);
    expect((soil()!.soilMoistureVwc as { observedAt: string }).observedAt).toBe(new Date(t2).toISOString());
    const afterOutage = ngsi.requests.filter((r) => r.headers['ngsild-tenant'] === 'dalat' && r.status === 204);
    expect(afterOutage.length).toBeGreaterThan(0);
    for (const r of afterOutage)
      for (const e of JSON.parse(r.body) as NgsiLdEntity[]) expect(schemaProblems(e)).toEqual([]);

    // a late backlog of old readings never puts an old value over a newer one
    const before = ngsi.requests.length;
    const old = pollBatches(
      devices.filter((d) => d.device === 'soil-a1'),
      t1 - 600_000,
      -20,
    );
    await publish(old);
    await waitUntil(
      () => ngsi.requests.slice(before).some((r) => r.body.includes(':soil-a1"')),
      30_000,
      'an upsert after the late backlog',
    );
    expect(moistureOf(soil())).toBeCloseTo(v2 / 100, 9);

    // export: the same mapping for any time range, one entity per device per observation time
    const ex = await runCli([
      'export',
      '--receiver-db',
      db,
      '--format',
      'ngsi-ld',
      '--gateway-configs',
      configs,
      '--from',
      new Date(t1 - 1000).toISOString(),
    ]);
    expect(ex.stderr).toBe('');
    expect(ex.code).toBe(0);
    const lines = ex.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as NgsiLdEntity);
    for (const e of lines) expect(schemaProblems(e)).toEqual([]);
    const soilLines = lines.filter((e) => e.id === 'urn:ngsi-ld:AgriParcelRecord:dl-gw-0001:soil-a1');
    // two polls in range (the old backlog is before --from): two lines, in time order
    expect(soilLines.map((e) => (e.soilMoistureVwc as { observedAt: string }).observedAt)).toEqual([
      new Date(t1).toISOString(),
      new Date(t2).toISOString(),
    ]);
    expect(lines.some((e) => e.id === 'urn:ngsi-ld:DeviceMeasurement:dl-gw-9999:pump-7:state')).toBe(true);

    recv.child.kill('SIGTERM');
    expect(await recv.exited).toBe(0);
  }, 150_000);

  it('refuses bad NGSI-LD flags with one clear line', async () => {
    const r = await runCli(['receiver', '--broker', mosq.url, '--db', join(dir, 'x.db'), '--tenant', 'dalat']);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toBe('langbiang: --tenant needs --ngsi-ld URL');
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'gw.yaml'), 'gateway: { id: gw-1, location: { lat: 95, lon: 0 } }\n');
    const r2 = await runCli([
      'receiver',
      '--broker',
      mosq.url,
      '--db',
      join(dir, 'x.db'),
      '--ngsi-ld',
      ngsi.url,
      '--gateway-configs',
      bad,
    ]);
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toMatch(/gateway\.location\.lat/);
    expect(r2.stderr).not.toMatch(/\n\s+at /);
    expect(() => loadNgsiLdSites(join(dir, 'nowhere'))).toThrow(/no such file or directory/);
    const twice = join(dir, 'twice');
    mkdirSync(twice);
    writeFileSync(join(twice, 'a.yaml'), 'gateway: { id: gw-1 }\n');
    writeFileSync(join(twice, 'b.yaml'), 'gateway: { id: gw-1 }\n');
    expect(() => loadNgsiLdSites(twice)).toThrow(/b\.yaml: gateway gw-1 is also configured in .*a\.yaml/);
  });
});

describe('langbiang export --format ngsi-ld --data-dir', () => {
  it("maps a gateway's own store with its config: one entity per device per poll", async () => {
    const dataDir = join(dir, 'gw-data');
    const gw = Store.open({ dataDir });
    const t = Date.parse('2026-01-15T03:00:00Z');
    const readings: Reading[] = [];
    for (const [i, ts] of [t, t + 30_000].entries()) {
      const r = (device: string, point: string, value: number | null, unit?: string): Reading => ({
        device,
        point,
        value,
        quality: value === null ? 'timeout' : 'good',
        ts,
        mono: ts - t,
        bootId: 'b1',
        synced: true,
        ...(unit ? { unit } : {}),
      });
      readings.push(
        r('soil-a1', 'moisture', 35 + i, '%'),
        r('soil-a1', 'temperature', 19.5, '°C'),
        r('soil-a1', 'ec', i === 1 ? null : 1200, 'µS/cm'),
        r('climate-1', 'temperature', 21 + i, '°C'),
        r('climate-1', 'humidity', 80, '%RH'),
        r('valves', 'relay_1', i),
      );
    }
    gw.append(readings);
    gw.close();
    const cfg = join(configs, 'greenhouse.yaml');
    const ex = await runCli(['export', '--data-dir', dataDir, '--format', 'ngsi-ld', '--gateway-configs', cfg]);
    expect(ex.stderr).toBe('');
    expect(ex.code).toBe(0);
    const lines = ex.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as NgsiLdEntity);
    for (const e of lines) expect(schemaProblems(e)).toEqual([]);
    expect(lines.map((e) => e.id)).toEqual([
      'urn:ngsi-ld:AgriParcelRecord:dl-gw-0001:soil-a1',
      'urn:ngsi-ld:WeatherObserved:dl-gw-0001:climate-1',
      'urn:ngsi-ld:DeviceMeasurement:dl-gw-0001:valves:relay_1',
      'urn:ngsi-ld:AgriParcelRecord:dl-gw-0001:soil-a1',
      'urn:ngsi-ld:WeatherObserved:dl-gw-0001:climate-1',
      'urn:ngsi-ld:DeviceMeasurement:dl-gw-0001:valves:relay_1',
    ]);
    // the second poll's EC timed out: the line keeps the last good EC with its own, older observedAt
    const second = toKeyValues(lines[3]!);
    expect(second).toMatchObject({ soilMoistureVwc: 0.36, soilMoistureEc: 0.12 });
    expect((lines[3]!.soilMoistureEc as { observedAt: string }).observedAt).toBe(new Date(t).toISOString());
    expect(toKeyValues(lines[4]!).dateObserved).toBe(new Date(t + 30_000).toISOString());

    const bare = await runCli(['export', '--data-dir', dataDir, '--format', 'ngsi-ld']);
    expect(bare.code).not.toBe(0);
    expect(bare.stderr.trim()).toMatch(/^langbiang: --format ngsi-ld with --data-dir needs --gateway-configs FILE/);
    const ctx = await runCli([
      'export',
      '--data-dir',
      dataDir,
      '--format',
      'ngsi-ld',
      '--gateway-configs',
      cfg,
      '--context',
      'ctx',
    ]);
    expect(ctx.stderr.trim()).toBe('langbiang: --context "ctx" is not an http(s) URL of a JSON-LD context');
    const csv = await runCli(['export', '--data-dir', dataDir, '--gateway-configs', cfg]);
    expect(csv.stderr.trim()).toBe('langbiang: --gateway-configs and --context need --format ngsi-ld');
    const own = await runCli([
      'export',
      '--data-dir',
      dataDir,
      '--format',
      'ngsi-ld',
      '--gateway-configs',
      cfg,
      '--context',
      'https://city.example/context.jsonld',
      '--device',
      'climate-1',
    ]);
    expect(own.code).toBe(0);
    const ownLines = own.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as NgsiLdEntity);
    expect(ownLines.map((e) => [e.id, e['@context']])).toEqual([
      ['urn:ngsi-ld:WeatherObserved:dl-gw-0001:climate-1', ['https://city.example/context.jsonld']],
      ['urn:ngsi-ld:WeatherObserved:dl-gw-0001:climate-1', ['https://city.example/context.jsonld']],
    ]);
  });
});

describe('the NGSI-LD output on PostgreSQL', () => {
  let pg: Postgres;
  beforeAll(async () => {
    pg = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await pg?.stop();
  });

  it('reads a PostgreSQL receiver database through the same queries', async () => {
    const devices = fleet().filter((d) => d.gateway === 'dl-cab-0107');
    const store = await openReceiverStore(pg.url);
    const receiver = new Receiver({ brokerUrl: mosq.url, store, clientId: 'recv-ngsi-pg', exclusive: true });
    await receiver.start();
    await receiver.ready();
    const output = new NgsiLdOutput({
      source: await openNgsiLdSource(pg.url),
      client: new NgsiLdClient({ url: ngsi.url, tenant: 'pg' }),
      sites: loadNgsiLdSites(configs),
      name: 'pg-test',
      pollMs: 200,
      lagMs: 500,
      retryMinMs: 200,
    });
    output.start();
    try {
      const t = Date.now() - 5000;
      await publish(pollBatches(devices, t));
      const want = expectedIds(devices);
      const state = () => ngsi.tenants.get('pg') ?? new Map<string, NgsiLdEntity>();
      await waitUntil(() => [...want.keys()].every((id) => state().has(id)), 30_000, 'every entity at the broker');
      for (const e of state().values()) expect(schemaProblems(e)).toEqual([]);
      expect(output.stats()).toMatchObject({ rejected: 0, upserted: want.size });
      const loop = state().get('urn:ngsi-ld:TrafficFlowObserved:dl-cab-0107:loop-n1')!;
      expect(toKeyValues(loop).dateObserved).toBe(new Date(t).toISOString());
    } finally {
      await output.stop();
      await receiver.stop();
    }
  }, 90_000);
});
