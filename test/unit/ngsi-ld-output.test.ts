import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TelemetryBatch } from '../../cloud-sync/protocol/types.js';
import { openReceiverStore, type ReceiverStore } from '../../cloud-sync/receiver/index.js';
import {
  NgsiLdClient,
  type NgsiLdEntity,
  NgsiLdOutput,
  type NgsiLdSites,
  openNgsiLdSource,
  toKeyValues,
} from '../../cloud-sync/receiver/ngsi-ld/index.js';
import { loadProfiles } from '../../hardware/profiles.js';
import { waitUntil } from '../helpers/cli.js';
import { type NgsiLdBroker, startNgsiLdBroker } from '../helpers/ngsi-ld-broker.js';
import { schemaProblems } from '../helpers/smart-data-models.js';

let dir: string;
let broker: NgsiLdBroker;
const profiles = loadProfiles();
const soil = profiles.get('comwintop-cwt-soil')!;
const climate = profiles.get('xy-md02')!;

/** 20 soil probes and a climate sensor on one gateway */
const sites: NgsiLdSites = new Map([
  [
    'gw-1',
    {
      location: { lat: 11.94, lon: 108.45 },
      devices: new Map([
        ...Array.from({ length: 20 }, (_, i) => [`soil-${i}`, { profile: soil.name, mapping: soil.ngsiLd }] as const),
        ['air', { profile: climate.name, mapping: climate.ngsiLd }] as const,
      ]),
    },
  ],
]);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'langbiang-ngsi-out-'));
  broker = await startNgsiLdBroker();
});
afterAll(async () => {
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
function batch(t: number, moisture: number, devices = 20): TelemetryBatch {
  const first = seq + 1;
  const readings: TelemetryBatch['readings'] = [];
  for (let i = 0; i < devices; i++) {
    readings.push({
      seq: ++seq,
      device: `soil-${i}`,
      point: 'moisture',
      ts: t,
      value: moisture + i,
      unit: '%',
      quality: 'good',
    });
    readings.push({
      seq: ++seq,
      device: `soil-${i}`,
      point: 'temperature',
      ts: t,
      value: 19,
      unit: '°C',
      quality: 'good',
    });
  }
  readings.push({ seq: ++seq, device: 'air', point: 'temperature', ts: t, value: 22.5, unit: '°C', quality: 'good' });
  readings.push({ seq: ++seq, device: 'air', point: 'humidity', ts: t, value: 81, unit: '%RH', quality: 'good' });
  return { v: 2, gateway: 'gw-1', epoch: 'e1', firstSeq: first, lastSeq: seq, readings };
}

function output(db: string, tenant: string, over: Partial<ConstructorParameters<typeof NgsiLdOutput>[0]> = {}) {
  return openNgsiLdSource(db).then(
    (source) =>
      new NgsiLdOutput({
        source,
        client: new NgsiLdClient({ url: `${broker.url}/ngsi-ld/v1/`, tenant }),
        sites,
        name: `test-${tenant}`,
        pollMs: 50,
        lagMs: 0,
        retryMinMs: 50,
        retryMaxMs: 200,
        ...over,
      }),
  );
}

const state = (tenant: string) => broker.tenants.get(tenant) ?? new Map<string, NgsiLdEntity>();
const requestsOf = (tenant: string) => broker.requests.filter((r) => r.headers['ngsild-tenant'] === tenant);

describe('NgsiLdOutput', () => {
  let store: ReceiverStore;
  let db: string;
  beforeAll(async () => {
    db = join(dir, 'receiver.db');
    store = await openReceiverStore(db);
  });
  afterAll(async () => {
    await store.close();
  });

  it('works through a backlog in rounds, in batches, and resumes from its cursor after a restart', async () => {
    const t = Date.parse('2026-01-15T03:00:00Z');
    await store.writeTelemetry(batch(t, 30), Date.now());
    await store.writeTelemetry(batch(t + 30_000, 40), Date.now());
    const out = await output(db, 't-rounds', { scanRows: 7, batchEntities: 4 });
    out.start();
    await waitUntil(() => state('t-rounds').size === 21, 10_000, 'all 21 entities');
    await waitUntil(() => out.stats().caughtUpTo !== undefined && requestsOf('t-rounds').length > 0, 5000, 'caught up');
    // several rounds (7 readings each), never more than 4 entities a request
    for (const r of requestsOf('t-rounds')) expect((JSON.parse(r.body) as unknown[]).length).toBeLessThanOrEqual(4);
    await waitUntil(
      async () => {
        const before = requestsOf('t-rounds').length;
        await new Promise((r) => setTimeout(r, 300));
        return requestsOf('t-rounds').length === before;
      },
      10_000,
      'the output to go idle',
    );
    // each device ends at its newest value, even when an earlier round sent an older one first
    expect(toKeyValues(state('t-rounds').get('urn:ngsi-ld:AgriParcelRecord:gw-1:soil-3')!).soilMoistureVwc).toBe(0.43);
    for (const e of state('t-rounds').values()) expect(schemaProblems(e)).toEqual([]);
    await out.stop();

    const sent = requestsOf('t-rounds').length;
    const again = await output(db, 't-rounds');
    again.start();
    await new Promise((r) => setTimeout(r, 500));
    expect(requestsOf('t-rounds').length).toBe(sent); // nothing new: nothing re-sent
    await store.writeTelemetry(batch(t + 60_000, 50, 1), Date.now());
    await waitUntil(() => requestsOf('t-rounds').length > sent, 5000, 'the new readings');
    const next = requestsOf('t-rounds')
      .slice(sent)
      .flatMap((r) => JSON.parse(r.body) as NgsiLdEntity[]);
    expect(next.map((e) => e.id).sort()).toEqual([
      'urn:ngsi-ld:AgriParcelRecord:gw-1:soil-0',
      'urn:ngsi-ld:WeatherObserved:gw-1:air',
    ]);
    await again.stop();
  });

  it('retries a broker that answers 503, and counts and skips entities it refuses (207)', async () => {
    broker.failNext = 2;
    broker.refuse = (e) => e.id.endsWith(':soil-7');
    const out = await output(db, 't-refuse');
    out.start();
    try {
      await waitUntil(() => state('t-refuse').size === 20, 10_000, '20 entities taken');
      await waitUntil(() => out.stats().rejected === 1, 5000, 'one refused');
      expect(out.stats().failures).toBe(2);
      expect(state('t-refuse').has('urn:ngsi-ld:AgriParcelRecord:gw-1:soil-7')).toBe(false);
      const statuses = requestsOf('t-refuse').map((r) => r.status);
      expect(statuses.slice(0, 2)).toEqual([503, 503]);
      expect(statuses).toContain(207);
      // refused content is not retried forever: the output goes idle
      const n = requestsOf('t-refuse').length;
      await new Promise((r) => setTimeout(r, 400));
      expect(requestsOf('t-refuse').length).toBe(n);
    } finally {
      broker.refuse = undefined;
      await out.stop();
    }
  });

  it('gives up on a broker that never answers, and stops at once while a request hangs', async () => {
    let requests = 0;
    const silent = createServer(() => {
      requests++; // takes the request, never answers
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const client = new NgsiLdClient({ url, timeoutMs: 300 });
      const e = { id: 'urn:ngsi-ld:Thing:1', type: 'Thing', '@context': ['https://example.org/c.jsonld'] };
      await expect(client.upsert([e])).rejects.toMatchObject({
        code: 'NGSI_LD_UNAVAILABLE',
        message: expect.stringMatching(/no answer within 300 ms/),
      });
      const source = await openNgsiLdSource(db);
      const out = new NgsiLdOutput({ source, client: new NgsiLdClient({ url }), sites, name: 'hang', lagMs: 0 });
      out.start();
      await waitUntil(() => requests > 0, 5000, 'a request in flight');
      const t0 = Date.now();
      await out.stop();
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      silent.closeAllConnections();
      await new Promise((r) => silent.close(r));
    }
  });

  it('refuses a database that is not a receiver database', async () => {
    await expect(openNgsiLdSource(join(dir, 'nothing.db'))).rejects.toThrow(/cannot use the receiver database/);
  });
});
