import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvents } from '../../cloud-sync/protocol/events.js';
import { encodeTelemetry, NATIVE_VERSION } from '../../cloud-sync/protocol/native.js';
import type { EventsBatch, TelemetryBatch, WireReading } from '../../cloud-sync/protocol/types.js';
import {
  openReceiverStore,
  type ReceivedReading,
  Receiver,
  type ReceiverStore,
} from '../../cloud-sync/receiver/index.js';
import { LangbiangError } from '../../gateway/core/errors.js';
import type { Reading } from '../../gateway/core/reading.js';
import { Store } from '../../gateway/store/index.js';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Postgres, startPostgres } from '../helpers/postgres.js';

let broker: Mosquitto;
let pg: Postgres;
let dir: string;
const children: RunningCli[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'langbiang-receiver-'));
  [broker, pg] = await Promise.all([startMosquitto(), startPostgres()]);
}, 60_000);

afterAll(async () => {
  for (const c of children) c.child.kill('SIGKILL');
  await broker?.close();
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const T0 = Date.parse('2025-03-01T08:00:00.000Z');

/** n readings from seq first on, with the values a real gateway sends: decimals, f32 noise, nulls, strings. */
function batchOf(gateway: string, epoch: string, first: number, n: number): TelemetryBatch {
  const readings: WireReading[] = [];
  for (let i = 0; i < n; i++) {
    const seq = first + i;
    const kind = seq % 5;
    readings.push({
      seq,
      device: kind < 3 ? 'soil-a1' : 'meter-1',
      point: ['moisture', 'temperature', 'ec', 'voltage', 'firmware'][kind]!,
      ts: T0 + seq * 250,
      value:
        kind === 0
          ? 30 + (seq % 7) / 10
          : kind === 1
            ? Math.fround(18 + seq / 3)
            : kind === 2
              ? seq % 11 === 0
                ? null
                : seq * 3
              : kind === 3
                ? 229.5 - seq / 100
                : `v1.${seq % 3}`,
      unit: kind === 0 ? '%' : kind === 1 ? '°C' : kind === 2 ? 'µS/cm' : kind === 3 ? 'V' : null,
      quality: kind === 2 && seq % 11 === 0 ? 'timeout' : 'good',
    });
  }
  return { v: NATIVE_VERSION, gateway, epoch, firstSeq: first, lastSeq: first + n - 1, readings };
}

/** The version 1 example of docs/protocol.md: gateway gw-1 in the payload, three readings. */
const V1_GW1 = Buffer.from(
  '01000467772d31043966326391080303d0c3f689d8660507736f696c2d6131086d6f697374757265' +
    '01250b74656d706572617475726503c2b043020001030003050001000000010000a84e303030c005c00302',
  'hex',
);

async function publisher(): Promise<mqtt.MqttClient> {
  return mqtt.connectAsync(broker.url, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    clientId: `test-pub-${Math.random().toString(16).slice(2)}`,
  });
}

function publishTelemetry(c: mqtt.MqttClient, b: TelemetryBatch): Promise<unknown> {
  return c.publishAsync(`langbiang/v1/${b.gateway}/telemetry`, encodeTelemetry(b), { qos: 1 });
}

function startReceiverCli(db: string, clientId: string, extra: string[] = []): RunningCli {
  const r = startCli([
    'receiver',
    '--broker',
    broker.url,
    '--db',
    db,
    '--client-id',
    clientId,
    '--stats-interval',
    '0',
    ...extra,
  ]);
  children.push(r);
  return r;
}

async function allReadings(store: ReceiverStore): Promise<ReceivedReading[]> {
  const out: ReceivedReading[] = [];
  for await (const page of store.readings({ pageSize: 700 })) out.push(...page);
  return out;
}

/** The last JSON log line with this msg. */
function lastLog(output: string, msg: string): Record<string, unknown> {
  const lines = output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((o) => o.msg === msg);
  if (!lines.length) throw new Error(`no "${msg}" line in:\n${output.slice(-2000)}`);
  return lines[lines.length - 1]!;
}

describe('the reference receiver', () => {
  it('stores a batch once however often it comes, and counts malformed messages without falling over (SQLite)', async () => {
    // batches of more than 20 readings are committed whole (landed) and made rows later; the
    // small one at the end becomes rows at once: garbage must reach neither path
    const store = await openReceiverStore(`sqlite://${join(dir, 'inproc.db')}`, { landAbove: 20 });
    const receiver = new Receiver({ brokerUrl: broker.url, store, clientId: 'recv-inproc', group: 'inproc' });
    await receiver.start();
    await receiver.ready();
    const pub = await publisher();
    try {
      const a = batchOf('dl-gw-a', 'e1', 1, 50);
      const b = batchOf('dl-gw-a', 'e1', 51, 50);
      await publishTelemetry(pub, a);
      await publishTelemetry(pub, a); // a resend after a lost PUBACK
      await publishTelemetry(pub, b);
      // malformed: garbage, truncated, unknown version, a version 1 envelope naming another gateway
      // (version 2 has no gateway in the payload: the topic names it), bad JSON events
      await pub.publishAsync('langbiang/v1/dl-gw-a/telemetry', Buffer.from('hello'), { qos: 1 });
      await pub.publishAsync('langbiang/v1/dl-gw-a/telemetry', encodeTelemetry(b).subarray(0, 9), { qos: 1 });
      const v9 = Buffer.from(encodeTelemetry(b));
      v9[0] = 9;
      await pub.publishAsync('langbiang/v1/dl-gw-a/telemetry', v9, { qos: 1 });
      await pub.publishAsync('langbiang/v1/dl-gw-a/telemetry', V1_GW1, { qos: 1 });
      await pub.publishAsync('langbiang/v1/dl-gw-a/events', Buffer.from('{"v":1,'), { qos: 1 });
      const gap: EventsBatch = {
        v: 1,
        gateway: 'dl-gw-a',
        epoch: 'e1',
        events: [{ id: 7, kind: 'gap', ts: T0, data: { firstSeq: 101, lastSeq: 140, count: 40, reason: 'byte_cap' } }],
      };
      await pub.publishAsync('langbiang/v1/dl-gw-a/events', encodeEvents(gap), { qos: 1 });
      await pub.publishAsync('langbiang/v1/dl-gw-a/events', encodeEvents(gap), { qos: 1 });
      // and the receiver is still there for the next good batch
      const c = batchOf('dl-gw-a', 'e1', 141, 10);
      await publishTelemetry(pub, c);

      const s = await waitUntil(
        () => {
          const x = receiver.stats();
          return x.messages >= 11 ? x : undefined;
        },
        15_000,
        'the receiver to take all 11 messages',
      );
      expect(s).toMatchObject({
        messages: 11,
        readingsInserted: 110,
        duplicates: 50,
        malformed: 5,
        eventsInserted: 1,
        eventDuplicates: 1,
        writeErrors: 0,
        telemetryLanded: 3,
        connected: true,
      });

      const rows = await allReadings(store);
      const sent = [...a.readings, ...b.readings, ...c.readings];
      expect(rows.map((r) => r.seq)).toEqual(sent.map((r) => r.seq));
      expect(rows).toEqual(sent.map((r) => ({ gateway: 'dl-gw-a', epoch: 'e1', ...r })));
      expect(await store.events()).toEqual([{ gateway: 'dl-gw-a', epoch: 'e1', ...gap.events[0]! }]);
    } finally {
      await pub.endAsync();
      await receiver.stop();
    }
  });

  it('does not acknowledge a message whose write failed: the broker sends it again and it is stored', async () => {
    const real = await openReceiverStore(join(dir, 'flaky.db'));
    let failures = 2;
    // the database "goes down" for the first two writes
    const flaky = new Proxy(real, {
      get(target, prop) {
        if (prop === 'writeTelemetry') {
          return async (b: TelemetryBatch, at: number) => {
            if (failures-- > 0)
              throw new LangbiangError('STORE_FAILED', 'receiver database write failed: connection refused');
            return target.writeTelemetry(b, at);
          };
        }
        const v = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const receiver = new Receiver({
      brokerUrl: broker.url,
      store: flaky,
      clientId: 'recv-flaky',
      group: 'flaky',
      reconnectMinMs: 100,
      reconnectMaxMs: 400,
    });
    await receiver.start();
    await receiver.ready();
    const pub = await publisher();
    try {
      await publishTelemetry(pub, batchOf('dl-gw-f', 'ef', 1, 40));
      const s = await waitUntil(
        () => {
          const x = receiver.stats();
          return x.readingsInserted === 40 ? x : undefined;
        },
        15_000,
        'the batch to be stored after two failed writes',
      );
      expect(s.writeErrors).toBe(2);
      expect(s.readingsInserted).toBe(40);
      expect((await allReadings(real)).map((r) => r.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    } finally {
      await pub.endAsync();
      await receiver.stop();
    }
  });

  it('PostgreSQL: a receiver killed with SIGKILL gets, once back, what came meanwhile; replays are stored once', async () => {
    const url = await pg.createDatabase('crash');
    let r = startReceiverCli(url, 'recv-crash', ['--group', 'crash']);
    await r.waitFor('receiver subscribed', 20_000);
    const store = await openReceiverStore(url, { readonly: true });
    const pub = await publisher();
    try {
      const batches = Array.from({ length: 120 }, (_, i) => batchOf('dl-gw-c', 'e-crash', 1 + i * 25, 25));
      for (const b of batches.slice(0, 60)) await publishTelemetry(pub, b);
      // kill it while it works through the first half (whatever it had not acked comes again)
      await waitUntil(async () => (await store.counts()).readings > 0, 15_000, 'the first readings');
      r.child.kill('SIGKILL');
      await r.exited;
      // published while it is down: the broker keeps them in its session
      for (const b of batches.slice(60)) await publishTelemetry(pub, b);
      // a replay of already stored batches, as a gateway sends after its own crash
      for (const b of batches.slice(0, 10)) await publishTelemetry(pub, b);
      r = startReceiverCli(url, 'recv-crash', ['--group', 'crash']);
      await r.waitFor('receiver subscribed', 20_000);
      await waitUntil(async () => (await store.counts()).readings === 3000, 30_000, 'all 3000 readings');
      const rows = await allReadings(store);
      expect(rows.length).toBe(3000);
      expect(rows.map((x) => x.seq)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
      expect(rows[4]).toEqual({ gateway: 'dl-gw-c', epoch: 'e-crash', ...batches[0]!.readings[4]! });
      r.child.kill('SIGTERM');
      expect(await r.exited).toBe(0);
      const stopped = lastLog(r.output(), 'receiver stopped');
      expect(stopped.malformed).toBe(0);
      expect(stopped.duplicates).toBeGreaterThanOrEqual(250); // at least the replayed ten batches
    } finally {
      await pub.endAsync();
      await store.close();
    }
  });

  it('two receivers on one shared subscription split the messages; every reading is stored once (PostgreSQL)', async () => {
    const url = await pg.createDatabase('shared');
    const ra = startReceiverCli(url, 'recv-a', ['--group', 'city']);
    const rb = startReceiverCli(url, 'recv-b', ['--group', 'city']);
    await Promise.all([ra.waitFor('receiver subscribed', 20_000), rb.waitFor('receiver subscribed', 20_000)]);
    const store = await openReceiverStore(url, { readonly: true });
    const pub = await publisher();
    try {
      const sent: TelemetryBatch[] = [];
      for (const gw of ['dl-gw-1', 'dl-gw-2', 'dl-gw-3']) {
        for (let i = 0; i < 30; i++) sent.push(batchOf(gw, `epoch-${gw}`, 1 + i * 20, 20));
      }
      await Promise.all(sent.map((b) => publishTelemetry(pub, b)));
      // resends of a few batches, which may land on either receiver
      await Promise.all(sent.filter((_, i) => i % 9 === 0).map((b) => publishTelemetry(pub, b)));
      await waitUntil(async () => (await store.counts()).readings === 1800, 30_000, 'all 1800 readings');
      const rows = await allReadings(store);
      expect(rows.length).toBe(1800);
      const keys = new Set(rows.map((x) => `${x.gateway}/${x.epoch}/${x.seq}`));
      expect(keys.size).toBe(1800);

      ra.child.kill('SIGTERM');
      rb.child.kill('SIGTERM');
      await Promise.all([ra.exited, rb.exited]);
      const sa = lastLog(ra.output(), 'receiver stopped');
      const sb = lastLog(rb.output(), 'receiver stopped');
      // both took part, and together they inserted each reading exactly once
      expect(sa.telemetryMessages).toBeGreaterThan(0);
      expect(sb.telemetryMessages).toBeGreaterThan(0);
      expect((sa.telemetryMessages as number) + (sb.telemetryMessages as number)).toBe(100);
      expect((sa.readingsInserted as number) + (sb.readingsInserted as number)).toBe(1800);
      expect((sa.duplicates as number) + (sb.duplicates as number)).toBe(200);
    } finally {
      await pub.endAsync();
      await store.close();
    }
  });

  it('export --receiver-db prints gateway first and the same seq, device, point, ts, value as the gateway export', async () => {
    // A real gateway store, read the way the sync agent reads it, published as the agent publishes.
    const dataDir = join(dir, 'gw-data');
    const gw = Store.open({ dataDir });
    const boot = 'boot-1';
    const readings: Reading[] = [];
    for (let i = 0; i < 900; i++) {
      const kind = i % 4;
      readings.push({
        device: kind < 2 ? 'climate-1' : 'meter, "main"',
        point: ['temperature', 'humidity', 'voltage', 'power_factor'][kind]!,
        value:
          kind === 0
            ? Math.fround(21.3 + i / 97)
            : kind === 1
              ? 60 + (i % 13)
              : kind === 2
                ? i % 50 === 2
                  ? null
                  : 230.1 - i / 1000
                : -0.97,
        quality: kind === 2 && i % 50 === 2 ? 'timeout' : 'good',
        ts: T0 + i * 100 + (i % 3),
        mono: i * 100,
        bootId: boot,
        synced: true,
        ...(kind === 3 ? {} : { unit: ['°C', '%RH', 'V'][kind]! }),
      });
    }
    gw.append(readings);
    gw.flush();
    const epoch = gw.epoch;
    const stored = gw.readAfter(0, 10_000);
    gw.close();
    expect(stored.length).toBe(900);

    const dbFile = join(dir, 'export-receiver.db');
    // each test has its group: a stopped receiver's session keeps its share of its group's messages
    const r = startReceiverCli(dbFile, 'recv-export', ['--group', 'export']);
    await r.waitFor('receiver subscribed', 20_000);
    const pub = await publisher();
    try {
      for (let i = 0; i < stored.length; i += 128) {
        const part = stored.slice(i, i + 128);
        await publishTelemetry(pub, {
          v: NATIVE_VERSION,
          gateway: 'dl-gw-x',
          epoch,
          firstSeq: part[0]!.seq,
          lastSeq: part[part.length - 1]!.seq,
          readings: part.map((s) => ({
            seq: s.seq,
            device: s.device,
            point: s.point,
            ts: s.ts,
            value: s.value,
            unit: s.unit ?? null,
            quality: s.quality,
          })),
        });
      }
    } finally {
      await pub.endAsync();
    }
    const store = await openReceiverStore(dbFile, { readonly: true });
    await waitUntil(async () => (await store.counts()).readings === 900, 20_000, 'all 900 readings at the receiver');
    await store.close();
    r.child.kill('SIGTERM');
    await r.exited;

    for (const format of ['csv', 'jsonl'] as const) {
      const atGateway = await runCli(['export', '--data-dir', dataDir, '--format', format]);
      const atReceiver = await runCli(['export', '--receiver-db', `sqlite://${dbFile}`, '--format', format]);
      expect(atGateway.code, atGateway.stderr).toBe(0);
      expect(atReceiver.code, atReceiver.stderr).toBe(0);
      const g = atGateway.stdout.trimEnd().split('\n');
      const c = atReceiver.stdout.trimEnd().split('\n');
      expect(c.length).toBe(g.length);
      if (format === 'csv') {
        expect(c[0]).toBe('gateway,seq,device,point,ts,value,unit,quality');
        // the gateway column first, then the gateway's own line character for character
        expect(c.slice(1)).toEqual(g.slice(1).map((l) => `dl-gw-x,${l}`));
      } else {
        const cj = c.map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(Object.keys(cj[0]!)).toEqual(['gateway', 'seq', 'device', 'point', 'ts', 'value', 'unit', 'quality']);
        expect(cj.map(({ gateway, ...rest }) => rest)).toEqual(g.map((l) => JSON.parse(l)));
        expect(new Set(cj.map((o) => o.gateway))).toEqual(new Set(['dl-gw-x']));
      }
    }
    // filters work the same on both sides
    const gDev = await runCli([
      'export',
      '--data-dir',
      dataDir,
      '--device',
      'climate-1',
      '--to',
      new Date(T0 + 30_000).toISOString(),
    ]);
    const rDev = await runCli([
      'export',
      '--receiver-db',
      dbFile,
      '--device',
      'climate-1',
      '--to',
      new Date(T0 + 30_000).toISOString(),
    ]);
    expect(rDev.code, rDev.stderr).toBe(0);
    const gLines = gDev.stdout.trimEnd().split('\n').slice(1);
    expect(gLines.length).toBeGreaterThan(100);
    expect(rDev.stdout.trimEnd().split('\n').slice(1)).toEqual(gLines.map((l) => `dl-gw-x,${l}`));
  });

  it('connects with a client certificate (require_certificate) and with a user and password file', async () => {
    const tlsBroker = await startMosquitto({ tls: true });
    const pwBroker = await startMosquitto({ password: { user: 'city', pass: 'rec3iver-pw' } });
    try {
      const pwFile = join(dir, 'mqtt-password');
      writeFileSync(pwFile, 'rec3iver-pw\n', { mode: 0o600 });
      const tls = tlsBroker.tls!;
      const dbTls = join(dir, 'tls.db');
      const dbPw = join(dir, 'pw.db');
      const rt = startCli([
        'receiver',
        '--broker',
        tlsBroker.url,
        '--db',
        dbTls,
        '--client-id',
        'recv-tls',
        '--ca',
        tls.ca,
        '--cert',
        tls.cert,
        '--key',
        tls.key,
      ]);
      const rp = startCli([
        'receiver',
        '--broker',
        pwBroker.url,
        '--db',
        dbPw,
        '--client-id',
        'recv-pw',
        '--username',
        'city',
        '--password-file',
        pwFile,
      ]);
      children.push(rt, rp);
      await Promise.all([rt.waitFor('receiver subscribed', 20_000), rp.waitFor('receiver subscribed', 20_000)]);
      const pt = await mqtt.connectAsync(tlsBroker.url, {
        protocolVersion: 5,
        reconnectPeriod: 0,
        ca: readFileSync(tls.ca),
        cert: readFileSync(tls.cert),
        key: readFileSync(tls.key),
      });
      const pp = await mqtt.connectAsync(pwBroker.url, {
        protocolVersion: 5,
        reconnectPeriod: 0,
        username: 'city',
        password: 'rec3iver-pw',
      });
      await publishTelemetry(pt, batchOf('dl-gw-tls', 'e', 1, 30));
      await publishTelemetry(pp, batchOf('dl-gw-pw', 'e', 1, 20));
      await Promise.all([pt.endAsync(), pp.endAsync()]);
      for (const [db, n] of [
        [dbTls, 30],
        [dbPw, 20],
      ] as const) {
        const store = await openReceiverStore(db, { readonly: true });
        await waitUntil(async () => (await store.counts()).readings === n, 15_000, `${n} readings in ${db}`);
        await store.close();
      }
      // the password is nowhere in what the receiver printed
      expect(rp.output()).not.toContain('rec3iver-pw');
      rt.child.kill('SIGTERM');
      rp.child.kill('SIGTERM');
      await Promise.all([rt.exited, rp.exited]);
    } finally {
      await tlsBroker.close();
      await pwBroker.close();
    }
  });

  it('refuses what it cannot use with one clear sentence', async () => {
    const badDb = await runCli(['export', '--receiver-db', 'mysql://x/y']);
    expect(badDb.code).toBe(1);
    expect(badDb.stderr).toMatch(/unsupported receiver database mysql:\/\//);
    expect(badDb.stderr).not.toMatch(/\n\s+at /);
    const missing = await runCli(['export', '--receiver-db', join(dir, 'nope.db')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no receiver database at/);
    const secret = await runCli(['receiver', '--broker', 'mqtt://u:hunter2@127.0.0.1:1', '--db', join(dir, 'x.db')]);
    expect(secret.code).toBe(1);
    expect(secret.stderr).toMatch(/password/);
    const both = await runCli(['export', '--receiver-db', join(dir, 'x.db'), '--data-dir', dir]);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/either --data-dir or --receiver-db/);
  });
});
