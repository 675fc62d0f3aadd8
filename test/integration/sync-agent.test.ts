import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SyncAgent, type SyncAgentOptions } from '../../cloud-sync/agent.js';
import type { CommandExecutor } from '../../gateway/core/command.js';
import type { Reading } from '../../gateway/core/reading.js';
import { EVENTS_CURSOR, Store, SYNC_CURSOR } from '../../gateway/store/index.js';
import { makeCityKey } from '../helpers/city-key.js';
import { waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Listener, listen } from '../helpers/mqtt-listener.js';

// The sync agent in-process against a real Mosquitto, with a real SQLite store as its outbox.
const GW = 'dl-gw-sync';
/** the city's control key, pinned on the agent: commands must be signed with it */
const city = makeCityKey();
let broker: Mosquitto;
let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];

function readings(from: number, n: number): Reading[] {
  const t0 = Date.now() - 60_000;
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return {
      device: `dev-${i % 3}`,
      point: i % 2 ? 'temperature' : 'moisture',
      value: i % 7 === 0 ? null : Math.round(i * 13) / 10,
      quality: i % 7 === 0 ? ('timeout' as const) : ('good' as const),
      ts: t0 + i * 10,
      mono: i,
      bootId: 'boot',
      synced: true,
      unit: i % 2 ? '°C' : '%',
    };
  });
}

function openStore(): Store {
  const s = Store.open({ dataDir: mkdtempSync(join(dir, 'store-')), batchMaxDelayMs: 20 });
  cleanups.push(() => s.close());
  return s;
}

function agentFor(store: Store, o: Partial<SyncAgentOptions> = {}): SyncAgent {
  const a = new SyncAgent({
    gatewayId: GW,
    commandTrust: { keys: city.keys },
    outbox: store,
    events: store,
    url: broker.url,
    batchMaxDelayMs: 100,
    batchMaxReadings: 200,
    reconnectMinMs: 100,
    reconnectMaxMs: 500,
    tickMs: 50,
    version: 'test',
    ...o,
  });
  cleanups.unshift(() => a.stop());
  return a;
}

async function listener(url = broker.url, opts: mqtt.IClientOptions = {}): Promise<Listener> {
  const l = await listen(url, GW, opts);
  cleanups.unshift(() => l.close());
  return l;
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, k) => a + k);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lb-sync-agent-'));
  broker = await startMosquitto();
});
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  if (!broker.running()) await broker.start();
});
afterAll(async () => {
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('sync agent → Mosquitto → a plain subscriber', () => {
  it('delivers every stored reading decoded, in seq order, and moves the cursor to the end', async () => {
    const store = openStore();
    const l = await listener();
    const agent = agentFor(store);
    await agent.start();
    const src = readings(1, 1000);
    store.append(src.slice(0, 500));
    store.flush();
    store.append(src.slice(500));
    store.flush();
    await waitUntil(() => l.seqs().length >= 1000, 15_000, '1000 readings at the subscriber');
    expect(l.seqs()).toEqual(range(1, 1000));
    const got = l.telemetry.flatMap((b) => b.readings);
    const stored = store.readAfter(0, 2000);
    expect(got.map((r) => [r.seq, r.device, r.point, r.ts, r.value, r.unit, r.quality])).toEqual(
      stored.map((r) => [r.seq, r.device, r.point, r.ts, r.value, r.unit ?? null, r.quality]),
    );
    for (const b of l.telemetry) {
      expect(b.gateway).toBe(GW);
      expect(b.epoch).toBe(store.epoch);
      expect(b.readings.length).toBeLessThanOrEqual(200);
    }
    await waitUntil(() => store.getCursor(SYNC_CURSOR) === 1000, 5000, 'cursor at 1000');
    const st = agent.status();
    expect(st).toMatchObject({ connected: true, backlog: 0, oldestUnsentAgeS: null, inflight: 0, cursor: 1000 });
    expect(st.lastAckAt).toBeGreaterThan(Date.now() - 10_000);
    // retained status, online
    const online = l.status.find((s) => s.payload.state === 'online');
    expect(online?.payload).toMatchObject({ v: 1, gateway: GW, epoch: store.epoch, version: 'test' });
  });

  it('the cursor does not move while the broker is down; afterwards everything arrives, none lost', async () => {
    const store = openStore();
    const agent = agentFor(store);
    const l = await listener();
    await agent.start();
    store.append(readings(1, 300));
    store.flush();
    await waitUntil(() => store.getCursor(SYNC_CURSOR) === 300, 10_000, 'first 300 acknowledged');

    await broker.stop();
    await waitUntil(() => !agent.status().connected, 10_000, 'agent sees the broker gone');
    store.append(readings(301, 700));
    store.flush();
    await new Promise((r) => setTimeout(r, 800));
    expect(store.getCursor(SYNC_CURSOR)).toBe(300);
    expect(agent.status()).toMatchObject({ connected: false, backlog: 700, cursor: 300 });
    expect(agent.status().oldestUnsentAgeS).not.toBeNull();

    await broker.start();
    await waitUntil(() => store.getCursor(SYNC_CURSOR) === 1000, 20_000, 'cursor at 1000 after the broker is back');
    await waitUntil(() => new Set(l.seqs()).size >= 1000, 10_000, 'subscriber has all 1000');
    expect([...new Set(l.seqs())].sort((a, b) => a - b)).toEqual(range(1, 1000));
    expect(agent.status().connects).toBeGreaterThanOrEqual(2);
  });

  it('sends live readings before backlog, and paces the backlog with the token bucket', async () => {
    const store = openStore();
    store.append(readings(1, 2000));
    store.flush();
    const rate = 400;
    const l = await listener();
    const agent = agentFor(store, { backlogRate: rate, batchMaxReadings: 100, batchMaxDelayMs: 50 });
    const t0 = Date.now();
    await agent.start();
    await waitUntil(() => l.seqs().length > 0, 10_000, 'first backlog batch');
    // live readings stored while the backlog drains
    store.append(readings(2001, 50));
    store.flush();
    await waitUntil(() => l.seqs().some((s) => s > 2000), 10_000, 'the live batch');
    const elapsedS = (Date.now() - t0) / 1000;
    const received = l.seqs();
    const firstLive = received.findIndex((s) => s > 2000);
    const backlogBeforeLive = received.slice(0, firstLive).filter((s) => s <= 2000).length;
    // live went out while most of the backlog was still waiting
    expect(backlogBeforeLive).toBeLessThan(1500);
    // pacing by counts: never more than one bucket (100) plus rate × elapsed
    expect(backlogBeforeLive).toBeLessThanOrEqual(100 + rate * elapsedS + 1);
    const t1 = Date.now();
    const at1 = l.seqs().filter((s) => s <= 2000).length;
    await new Promise((r) => setTimeout(r, 1500));
    const drained = l.seqs().filter((s) => s <= 2000).length - at1;
    expect(drained).toBeGreaterThan(0);
    expect(drained).toBeLessThanOrEqual(100 + (rate * (Date.now() - t1)) / 1000 + 1);
    await waitUntil(() => store.getCursor(SYNC_CURSOR) === 2050, 15_000, 'everything acknowledged');
    expect([...new Set(l.seqs())].sort((a, b) => a - b)).toEqual(range(1, 2050));
  });

  it('publishes events (gaps, command audit) on `events` with their own cursor', async () => {
    const store = openStore();
    const l = await listener();
    const id1 = store.recordEvent('command', { id: 'c1', ok: true });
    const agent = agentFor(store);
    await agent.start();
    await waitUntil(() => l.events.length >= 1, 10_000, 'the first event');
    const id2 = store.recordEvent('alarm', { message: 'cửa tủ mở' });
    await waitUntil(() => store.getCursor(EVENTS_CURSOR) === id2, 10_000, 'events cursor at the second event');
    const all = l.events.flatMap((b) => b.events);
    expect(all.map((e) => [e.id, e.kind])).toEqual([
      [id1, 'command'],
      [id2, 'alarm'],
    ]);
    expect(l.events[0]).toMatchObject({ v: 1, gateway: GW, epoch: store.epoch });
    expect(agent.status().eventsBacklog).toBe(0);
  });

  it('answers unsigned and malformed commands with errors on cmd/result, runs good ones, and keeps syncing', async () => {
    const store = openStore();
    const seen: string[] = [];
    const commands: CommandExecutor = {
      async execute(req) {
        seen.push(`${req.id}:${req.device}/${req.point}=${String(req.value)}:${req.source}`);
        if (req.device === 'boom') throw new Error('bus on fire');
        return { id: req.id, ok: true, readBack: req.value, ts: Date.now() };
      },
    };
    const agent = agentFor(store, { commands });
    const l = await listener();
    await agent.start();
    await waitUntil(() => agent.status().connected, 10_000, 'agent connected');
    await new Promise((r) => setTimeout(r, 200)); // its cmd subscription
    const cmd = `langbiang/v1/${GW}/cmd`;
    const bad: (string | Buffer)[] = [
      '{oops',
      Buffer.from([0xff, 0x00, 0x13]),
      '[]',
      '{"device":"d","point":"p","value":1}',
      JSON.stringify({ id: 'huge', device: 'd', point: 'p', value: 'x'.repeat(20_000) }),
      JSON.stringify({
        id: 'c-unsigned',
        device: 'valves',
        point: 'relay_1',
        value: true,
        deadline: Date.now() + 60_000,
      }),
      '',
    ];
    for (const p of bad) await l.client.publishAsync(cmd, p, { qos: 1 });
    const signed = [
      city.signCommand(GW, { id: 'c-bad', device: 'd', point: 'p', value: { nested: 1 } }),
      city.signCommand(GW, { id: 'c-ok', device: 'valves', point: 'relay_1', value: true }),
      city.signCommand(GW, { id: 'c-boom', device: 'boom', point: 'p', value: 1 }),
    ];
    for (const p of signed) await l.client.publishAsync(cmd, p, { qos: 1 });
    await waitUntil(() => l.results.length >= bad.length + 3, 10_000, 'a result for every command');
    const byId = (id: string | null) => l.results.filter((r) => r.id === id);
    expect(byId(null)).toHaveLength(5);
    for (const r of [...byId(null), ...byId('huge'), ...byId('c-unsigned')])
      expect(r).toMatchObject({ v: 1, ok: false, code: 'UNTRUSTED' });
    expect(byId('c-bad')[0]).toMatchObject({
      ok: false,
      code: 'COMMAND_INVALID',
      message: expect.stringMatching(/value/),
    });
    expect(byId('c-ok')[0]).toMatchObject({ ok: true, readBack: true });
    expect(byId('c-boom')[0]).toMatchObject({ ok: false, code: 'DEVICE_ERROR', message: 'bus on fire' });
    expect(seen).toEqual(['c-ok:valves/relay_1=true:mqtt', 'c-boom:boom/p=1:mqtt']);
    // still syncing
    store.append(readings(1, 10));
    store.flush();
    await waitUntil(() => store.getCursor(SYNC_CURSOR) === 10, 10_000, 'readings still synced');
  });

  it('without a command router every command is answered BUSY', async () => {
    const store = openStore();
    const agent = agentFor(store);
    const l = await listener();
    await agent.start();
    await waitUntil(() => agent.status().connected, 10_000, 'agent connected');
    await new Promise((r) => setTimeout(r, 200));
    await l.client.publishAsync(
      `langbiang/v1/${GW}/cmd`,
      city.signCommand(GW, { id: 'c9', device: 'd', point: 'p', value: 0 }),
      {
        qos: 1,
      },
    );
    await waitUntil(() => l.results.length >= 1, 10_000, 'the result');
    expect(l.results[0]).toMatchObject({ id: 'c9', ok: false, code: 'BUSY', message: 'no command router' });
  });

  it('names the telemetry topic once per connection (MQTT 5 topic alias), whatever the number of messages', async () => {
    // a pass-through TCP proxy that keeps what the gateway sends
    const sent: Buffer[] = [];
    const server = net.createServer((client) => {
      const up = net.connect(broker.port, '127.0.0.1');
      client.on('data', (d: Buffer) => {
        sent.push(d);
        up.write(d);
      });
      up.on('data', (d: Buffer) => client.write(d));
      const end = () => {
        client.destroy();
        up.destroy();
      };
      client.on('error', end);
      up.on('error', end);
      client.on('close', end);
      up.on('close', end);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as net.AddressInfo).port;
    const store = openStore();
    const l = await listener();
    const agent = agentFor(store, { url: `mqtt://127.0.0.1:${port}`, batchMaxReadings: 50 });
    await agent.start();
    for (let i = 0; i < 4; i++) {
      store.append(readings(1 + i * 100, 100));
      store.flush();
      await waitUntil(() => store.getCursor(SYNC_CURSOR) === 100 * (i + 1), 10_000, `cursor at ${100 * (i + 1)}`);
    }
    expect(l.telemetry.length).toBeGreaterThanOrEqual(8);
    // the subscriber sees full topics: the alias is between the gateway and the broker only
    expect(l.seqs()).toEqual(range(1, 400));
    const wire = Buffer.concat(sent).toString('latin1');
    expect(wire.split(`langbiang/v1/${GW}/telemetry`).length - 1).toBe(1);
  });

  it('refuses a format other than native, naming the config key', () => {
    const store = openStore();
    expect(() => new SyncAgent({ gatewayId: GW, outbox: store, url: broker.url, format: 'sparkplug' })).toThrow(
      /sync\.format: "sparkplug" is not the native format/,
    );
  });
});
