import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RolloutState, runCityUpdate } from '../../gateway/cli/cmd-city-update.js';
import { verifySigned } from '../../gateway/core/signed.js';
import { MAX_UPDATE_ORDER_BYTES, MAX_UPDATE_ORDER_LIFETIME_MS, parseUpdateOrder } from '../../gateway/update/order.js';
import { type CityKey, makeCityKey } from '../helpers/city-key.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

/**
 * `langbiang city update` against a simulated fleet: 40 small fake gateways on a real Mosquitto,
 * each an MQTT client that checks every order with the gateway's own signature code (a tool that
 * signs wrongly fails here), then answers as a gateway does — the new version in its retained
 * status, confirmed; or a rollback (status and `update` event); or nothing at all.
 */
type Behaviour = 'ok' | 'rollback';

interface FakeGateway {
  id: string;
  orders: Array<{ version: string; sha256: string }>;
  refusals: string[];
  client: mqtt.MqttClient;
  /** runs the new release but never confirms it */
  probationOnly?: boolean;
}

const FROM = '1.3.0';
let broker: Mosquitto;
let dir: string;
let key: CityKey;
let keyFile: string;
let bundle: string;
const fleet: FakeGateway[] = [];

beforeAll(async () => {
  broker = await startMosquitto({ persistence: false });
  dir = mkdtempSync(path.join(os.tmpdir(), 'lb-rollout-'));
  key = makeCityKey('city-ops');
  keyFile = key.writeFiles(dir).privateFile;
  bundle = path.join(dir, 'langbiang-1.4.0-arm64.lbr');
  writeFileSync(bundle, randomBytes(4096));
});

afterAll(async () => {
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await Promise.all(fleet.splice(0).map((g) => g.client.endAsync()));
  // each test gets fresh gateways and a fresh broker state (retained orders and statuses)
  await broker.kill();
  await broker.start();
  process.exitCode = 0;
});

function status(id: string, running: string, extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      v: 1,
      gateway: id,
      epoch: 'e1',
      state: 'online',
      ts: Date.now(),
      version: running,
      update: { previous: null, ...extra },
    }),
  );
}

function events(id: string, list: Array<Record<string, unknown>>): Buffer {
  return Buffer.from(
    JSON.stringify({
      v: 1,
      gateway: id,
      epoch: 'e1',
      events: list.map((data, i) => ({ id: Date.now() + i, kind: data.kind ?? 'update', ts: Date.now(), data })),
    }),
  );
}

async function startFleet(n: number, behaviour: (i: number) => Behaviour): Promise<string> {
  for (let i = 0; i < n; i++) {
    const id = `dl-gw-${String(i).padStart(4, '0')}`;
    const client = await mqtt.connectAsync(broker.url, { clientId: `fake-${id}`, reconnectPeriod: 0 });
    const g: FakeGateway = { id, orders: [], refusals: [], client };
    const how = behaviour(i);
    client.on('message', (_topic, payload) => {
      if (payload.length === 0) return;
      const v = verifySigned(payload, {
        kind: 'update',
        gateway: id,
        keys: key.keys,
        now: Date.now(),
        maxLifetimeMs: MAX_UPDATE_ORDER_LIFETIME_MS,
        maxBytes: MAX_UPDATE_ORDER_BYTES,
      });
      if (!v.ok) {
        g.refusals.push(v.reason);
        void client.publishAsync(
          `langbiang/v1/${id}/events`,
          events(id, [{ kind: 'refused', topic: 'update', reason: v.reason, message: v.message }]),
          { qos: 1 },
        );
        return;
      }
      const parsed = parseUpdateOrder(v.body.message);
      if (!parsed.ok) {
        g.refusals.push(parsed.problem);
        return;
      }
      const { version, sha256 } = parsed.order;
      g.orders.push({ version, sha256 });
      setTimeout(
        () => {
          if (how === 'ok') {
            void client.publishAsync(
              `langbiang/v1/${id}/events`,
              events(id, [
                { outcome: 'downloaded', source: 'city', version },
                { outcome: 'installed', source: 'city', version },
              ]),
              { qos: 1 },
            );
            // the new release starts on probation, then confirms itself
            const pending = { previous: FROM, pending: { version, attempts: 1 } };
            void client.publishAsync(`langbiang/v1/${id}/status`, status(id, version, pending), {
              qos: 1,
              retain: true,
            });
            setTimeout(() => {
              if (g.probationOnly) return;
              void client.publishAsync(`langbiang/v1/${id}/status`, status(id, version, { previous: FROM }), {
                qos: 1,
                retain: true,
              });
            }, 100);
          } else if (how === 'rollback') {
            const last = { outcome: 'rolled-back', version, at: new Date().toISOString(), reason: 'crashed at start' };
            void client.publishAsync(
              `langbiang/v1/${id}/events`,
              events(id, [{ outcome: 'rolled-back', version, reason: 'crashed at start' }]),
              { qos: 1 },
            );
            void client.publishAsync(`langbiang/v1/${id}/status`, status(id, FROM, { last }), {
              qos: 1,
              retain: true,
            });
          }
        },
        30 + Math.floor(Math.random() * 100),
      );
    });
    await client.subscribeAsync(`langbiang/v1/${id}/update`, { qos: 1 });
    await client.publishAsync(`langbiang/v1/${id}/status`, status(id, FROM), { qos: 1, retain: true });
    fleet.push(g);
  }
  const file = path.join(dir, `fleet-${Date.now()}.txt`);
  writeFileSync(file, `# the canaries first\n${fleet.map((g) => g.id).join('\n')}\n`);
  return file;
}

function run(gateways: string, state: string, extra: Partial<Parameters<typeof runCityUpdate>[0]> = {}) {
  return runCityUpdate({
    gateways,
    state,
    bundle,
    url: 'https://updates.example.net/langbiang-1.4.0-arm64.lbr',
    release: '1.4.0',
    key: keyFile,
    broker: broker.url,
    stages: '5,25,100',
    maxFailures: '10%',
    confirmTimeout: '20s',
    quiet: true,
    ...extra,
  });
}

describe('langbiang city update (a staged roll-out)', () => {
  it('stops at the threshold in the second stage and sends nothing to the third; a second run continues', async () => {
    // stage 1 = 2 gateways, stage 2 = 10 in all, stage 3 = 40; three of stage 2 roll back
    const gateways = await startFleet(40, (i) => ([3, 5, 7].includes(i) ? 'rollback' : 'ok'));
    const state = path.join(dir, 'rollout-stop.json');
    const summary = await run(gateways, state);
    expect(summary).toMatchObject({ complete: false, stoppedAt: 2, ordered: 10, failed: 3, timedOut: 0 });
    expect(process.exitCode).toBe(1);
    for (const g of fleet.slice(0, 10)) expect(g.orders, g.id).toHaveLength(1);
    for (const g of fleet.slice(10)) expect(g.orders, g.id).toHaveLength(0);
    expect(fleet.every((g) => g.refusals.length === 0)).toBe(true);
    expect(fleet[0]!.orders[0]!.version).toBe('1.4.0');
    const saved = JSON.parse(readFileSync(state, 'utf8')) as RolloutState;
    expect(saved.stopped?.reason).toMatch(/3 failure\(s\) among 10 gateway\(s\) ordered, more than the 1 allowed/);
    expect(saved.gateways['dl-gw-0003']).toMatchObject({ outcome: 'failed' });
    expect(saved.gateways['dl-gw-0003']!.reason).toMatch(/rolled-back/);

    // the same command again, with the same budget: still stopped, still nothing sent
    process.exitCode = 0;
    const again = await run(gateways, state);
    expect(again.complete).toBe(false);
    expect(fleet.slice(10).every((g) => g.orders.length === 0)).toBe(true);

    // the operator accepts more failures: it continues where it stopped, nobody is ordered twice
    process.exitCode = 0;
    const resumed = await run(gateways, state, { maxFailures: '30%' });
    expect(resumed).toMatchObject({ complete: true, ordered: 40, confirmed: 37, failed: 3 });
    expect(process.exitCode).toBe(0);
    for (const g of fleet) expect(g.orders, g.id).toHaveLength(1);
  });

  it('goes to 100% when every gateway confirms', async () => {
    const gateways = await startFleet(40, () => 'ok');
    const summary = await run(gateways, path.join(dir, 'rollout-ok.json'), { stages: undefined, stage: '5%' });
    expect(summary).toMatchObject({ complete: true, ordered: 40, confirmed: 40, failed: 0, timedOut: 0 });
    for (const g of fleet) expect(g.orders, g.id).toEqual([{ version: '1.4.0', sha256: expect.any(String) }]);
    const saved = JSON.parse(readFileSync(path.join(dir, 'rollout-ok.json'), 'utf8')) as RolloutState;
    expect(saved.counts).toEqual([2, 10, 40]);
    expect(saved.finished).toBeTruthy();
  });

  it('counts a gateway that runs the release unconfirmed as failed after --confirm-timeout, and skips one already on the release', async () => {
    const gateways = await startFleet(10, () => 'ok');
    // gateway 1 starts the new release and never confirms it (a hang the pre-start check has not caught yet)
    fleet[1]!.probationOnly = true;
    // gateway 0 already runs 1.4.0, confirmed: no order for it
    await fleet[0]!.client.publishAsync(`langbiang/v1/${fleet[0]!.id}/status`, status(fleet[0]!.id, '1.4.0'), {
      qos: 1,
      retain: true,
    });
    const summary = await run(gateways, path.join(dir, 'rollout-timeout.json'), {
      stages: '20,100',
      maxFailures: '0',
      confirmTimeout: '2s',
    });
    expect(summary).toMatchObject({ complete: false, stoppedAt: 1, ordered: 2, confirmed: 1, timedOut: 1 });
    expect(fleet[0]!.orders).toHaveLength(0);
    expect(fleet[1]!.orders).toHaveLength(1);
    expect(fleet.slice(2).every((g) => g.orders.length === 0)).toBe(true);
  });
});
