import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvents } from '../../cloud-sync/protocol/events.js';
import { encodeTelemetry, NATIVE_VERSION } from '../../cloud-sync/protocol/native.js';
import { encodeStatus, STATUS_VERSION, type StatusMessage } from '../../cloud-sync/protocol/status.js';
import { openReceiverStore, Receiver } from '../../cloud-sync/receiver/index.js';
import { runCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Postgres, startPostgres } from '../helpers/postgres.js';

/**
 * The city's fleet view: gateways' retained `status` messages (published before and after the
 * receiver starts), their telemetry and `config` events, through a real Mosquitto into a real
 * SQLite and PostgreSQL receiver database, then `langbiang fleet` run as a technician would.
 */

let broker: Mosquitto;
let pg: Postgres;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lb-fleet-'));
  [broker, pg] = await Promise.all([startMosquitto(), startPostgres()]);
}, 60_000);

afterAll(async () => {
  await broker?.close();
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function status(gateway: string, extra: Partial<StatusMessage>): Buffer {
  return encodeStatus({ v: STATUS_VERSION, gateway, epoch: 'ep-1', state: 'online', ts: Date.now(), ...extra });
}

async function publisher(): Promise<mqtt.MqttClient> {
  return mqtt.connectAsync(broker.url, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    clientId: `fleet-pub-${Math.random()}`,
  });
}

interface FleetJson {
  gateways: {
    gateway: string;
    state: string;
    offlineReason: string | null;
    version: string | null;
    configVersion: number | null;
    backlog: number | null;
    unconfirmed: number | null;
    oldestUnconfirmedAgeS: number | null;
    confirm: string | null;
    readings24h: number;
    lastSeenAt: number | null;
    watermarks: { epoch: string; seq: number; events: number }[];
  }[];
}

describe.each(['sqlite', 'postgres'] as const)('langbiang fleet on %s', (backend) => {
  it('shows every gateway with its status, backlog, versions and watermarks', async () => {
    const tag = `${backend}-${Math.random().toString(16).slice(2, 8)}`;
    const gwA = `fleet-a-${tag}`;
    const gwB = `fleet-b-${tag}`;
    const gwC = `fleet-c-${tag}`;
    const url =
      backend === 'sqlite' ? join(dir, `${tag}.db`) : await pg.createDatabase(`fleet_${tag.replace(/-/g, '_')}`);
    const pub = await publisher();
    // before any receiver: only the broker's retained copy can bring this one to the city
    await pub.publishAsync(
      `langbiang/v1/${gwA}/status`,
      status(gwA, { version: '1.4.2', backlog: 17, unconfirmed: 230, oldestUnconfirmedAgeS: 42, confirm: 'city' }),
      { qos: 1, retain: true },
    );
    const store = await openReceiverStore(url);
    // a group of its own: the other backend's receiver left a session in the default group
    const receiver = new Receiver({
      brokerUrl: broker.url,
      store,
      clientId: `fleet-rx-${tag}`,
      group: `fleet-${tag}`,
      ackIntervalMs: 50,
    });
    await receiver.start();
    await receiver.ready();
    try {
      await pub.publishAsync(
        `langbiang/v1/${gwA}/telemetry`,
        encodeTelemetry({
          v: NATIVE_VERSION,
          gateway: gwA,
          epoch: 'ep-1',
          firstSeq: 1,
          lastSeq: 3,
          readings: [1, 2, 3].map((seq) => ({
            seq,
            device: 'rain-1',
            point: 'rainfall',
            ts: Date.now() - 1000 + seq,
            value: seq / 10,
            unit: 'mm',
            quality: 'good' as const,
          })),
        }),
        { qos: 1 },
      );
      await pub.publishAsync(
        `langbiang/v1/${gwA}/events`,
        encodeEvents({
          v: 1,
          gateway: gwA,
          epoch: 'ep-1',
          events: [
            { id: 1, kind: 'config', ts: Date.now() - 500, data: { outcome: 'applied', version: 7, problems: [] } },
            { id: 2, kind: 'config', ts: Date.now() - 400, data: { outcome: 'refused', version: 8, problems: ['x'] } },
          ],
        }),
        { qos: 1 },
      );
      // gateway B went away: the broker published its will
      await pub.publishAsync(
        `langbiang/v1/${gwB}/status`,
        status(gwB, { state: 'offline', reason: 'lwt', version: '1.3.0', backlog: 5 }),
        { qos: 1, retain: true },
      );
      // a status naming another gateway than its topic is not believed (the broker is not a trust boundary)
      await pub.publishAsync(`langbiang/v1/${gwC}/status`, status(gwA, { version: '6.6.6', backlog: 0 }), {
        qos: 1,
        retain: true,
      });
      await waitUntil(
        () => receiver.stats().statusMessages >= 2 && receiver.stats().eventsInserted >= 2,
        10_000,
        'status and events stored',
      );
      await waitUntil(() => receiver.stats().malformed >= 1, 5_000, 'the spoofed status refused');
      // an empty retained message clears a decommissioned gateway's status: kept out, not an error
      const malformed = receiver.stats().malformed;
      for (const gw of [gwA, gwB, gwC])
        await pub.publishAsync(`langbiang/v1/${gw}/status`, '', { qos: 1, retain: true });
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.stats().malformed).toBe(malformed);
    } finally {
      await receiver.stop();
      await pub.endAsync();
    }

    const r = await runCli(['fleet', '--receiver-db', url, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const fleet = JSON.parse(r.stdout) as FleetJson;
    const ids = fleet.gateways.map((g) => g.gateway);
    expect(ids).toEqual([gwA, gwB]);
    const a = fleet.gateways[0]!;
    expect(a).toMatchObject({
      state: 'online',
      version: '1.4.2',
      configVersion: 7,
      backlog: 17,
      unconfirmed: 230,
      oldestUnconfirmedAgeS: 42,
      confirm: 'city',
      readings24h: 3,
    });
    expect(a.watermarks).toEqual([expect.objectContaining({ epoch: 'ep-1', seq: 3, events: 2 })]);
    expect(a.lastSeenAt).toBeGreaterThan(Date.now() - 60_000);
    const b = fleet.gateways[1]!;
    expect(b).toMatchObject({
      state: 'offline',
      offlineReason: 'lwt',
      version: '1.3.0',
      backlog: 5,
      readings24h: 0,
      configVersion: null,
    });
    expect(b.watermarks).toEqual([]);

    const table = await runCli(['fleet', '--receiver-db', url]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^gateway\s+state\s+last seen\s+backlog\s+unconfirmed/);
    expect(lines.find((l) => l.startsWith(gwA))).toMatch(/online .* 17 +230 \(42s\) +city +3\/2 +3 +7 +1\.4\.2$/);
    expect(lines.find((l) => l.startsWith(gwB))).toMatch(/offline \(lwt\)/);
  }, 60_000);
});

it('langbiang fleet refuses a database the receiver never wrote, without a stack trace', async () => {
  const r = await runCli(['fleet', '--receiver-db', join(dir, 'none.db')]);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/no receiver database at/);
  expect(r.stderr).not.toMatch(/\n\s+at /);
});

it('a gateway whose readings are all older than a day is still listed, seen by its watermark', async () => {
  const url = join(dir, 'old.db');
  const store = await openReceiverStore(url);
  const old = Date.now() - 3 * 86_400_000;
  await store.writeTelemetry(
    {
      v: NATIVE_VERSION,
      gateway: 'gw-old',
      epoch: 'e1',
      firstSeq: 1,
      lastSeq: 2,
      readings: [1, 2].map((seq) => ({
        seq,
        device: 'd',
        point: 'p',
        ts: old + seq,
        value: seq,
        unit: null,
        quality: 'good' as const,
      })),
    },
    old + 5000,
  );
  await store.close();
  const r = await runCli(['fleet', '--receiver-db', url, '--json']);
  const fleet = JSON.parse(r.stdout) as FleetJson;
  expect(fleet.gateways).toHaveLength(1);
  expect(fleet.gateways[0]).toMatchObject({
    gateway: 'gw-old',
    state: 'unknown',
    readings24h: 0,
    lastSeenAt: old + 5000,
  });
  expect(fleet.gateways[0]!.watermarks).toEqual([expect.objectContaining({ epoch: 'e1', seq: 2 })]);
});
