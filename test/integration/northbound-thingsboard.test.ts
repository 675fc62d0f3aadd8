import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { NorthboundDevice } from '../../cloud-sync/northbound/agent.js';
import { ThingsBoardAgent, type ThingsBoardAgentOptions } from '../../cloud-sync/northbound/thingsboard/agent.js';
import type { CommandExecutor, CommandRequest } from '../../gateway/core/command.js';
import type { Reading } from '../../gateway/core/reading.js';
import { EVENTS_CURSOR, Store, SYNC_CURSOR } from '../../gateway/store/index.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';

// The ThingsBoard gateway MQTT API through a real Mosquitto, read by a subscriber that parses
// the JSON as ThingsBoard would.
const GW = 'dl-gw-tb';
const TOKEN = 'tb-token-Zq81xLw0';

let broker: Mosquitto;
let dir: string;
let tokenFile: string;
const cleanups: (() => Promise<void> | void)[] = [];

interface Seen {
  topic: string;
  body: Record<string, unknown>;
}

/** ThingsBoard's side: every v1/ message in arrival order, parsed. */
async function platform(persistent = false): Promise<{ seen: Seen[]; client: mqtt.MqttClient }> {
  // persistent: a session the broker keeps across its restart
  const client = await mqtt.connectAsync(
    broker.url,
    persistent
      ? { protocolVersion: 4, clean: false, clientId: `tb-platform-${process.pid}`, reconnectPeriod: 200 }
      : { protocolVersion: 4, clean: true, reconnectPeriod: 0 },
  );
  const seen: Seen[] = [];
  client.on('message', (topic, payload) => seen.push({ topic, body: JSON.parse(payload.toString('utf8')) }));
  await client.subscribeAsync('v1/#', { qos: 1 });
  cleanups.unshift(() => client.endAsync(true));
  return { seen, client };
}

const DEVICES: NorthboundDevice[] = [
  {
    id: 'climate-1',
    name: 'Nhà kính 3',
    zone: 'Khu A',
    profile: 'xy-md02',
    manufacturer: 'generic',
    model: 'XY-MD02',
    points: [
      { name: 'temperature', unit: '°C', kind: 'number', writable: false },
      { name: 'humidity', unit: '%RH', kind: 'number', writable: false },
    ],
  },
  { id: 'relay-1', profile: 'relay', points: [{ name: 'relay_1', kind: 'boolean', writable: true }] },
];

function reading(device: string, point: string, value: number | null, ts: number): Reading {
  return {
    device,
    point,
    value,
    quality: value === null ? 'timeout' : 'good',
    ts,
    mono: 0,
    bootId: 'boot',
    synced: true,
  };
}

function openStore(): Store {
  const s = Store.open({ dataDir: mkdtempSync(join(dir, 'store-')), batchMaxDelayMs: 20 });
  cleanups.push(() => s.close());
  return s;
}

function agentFor(store: Store, o: Partial<ThingsBoardAgentOptions> = {}): ThingsBoardAgent {
  const a = new ThingsBoardAgent({
    gatewayId: GW,
    devices: DEVICES,
    tokenFile,
    outbox: store,
    events: store,
    url: broker.url,
    batchMaxDelayMs: 100,
    reconnectMinMs: 100,
    reconnectMaxMs: 500,
    tickMs: 50,
    cursorName: SYNC_CURSOR,
    eventsCursorName: EVENTS_CURSOR,
    ...o,
  });
  cleanups.unshift(() => a.stop());
  return a;
}

function recordingExecutor(calls: CommandRequest[]): CommandExecutor {
  return {
    execute: async (req) => {
      calls.push(req);
      return { id: req.id, ok: true, ts: Date.now() };
    },
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lb-tb-'));
  tokenFile = join(dir, 'tb-token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  broker = await startMosquitto();
});
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});
afterAll(async () => {
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ThingsBoard gateway agent (real store, real Mosquitto)', () => {
  it('connects and describes every device, then batches several devices and timestamps per message with the original ts', async () => {
    const store = openStore();
    const t0 = Date.now() - 7_200_000; // two hours of backlog
    const stored: Reading[] = [];
    for (let k = 0; k < 10; k++) {
      const ts = t0 + k * 60_000;
      stored.push(
        reading('climate-1', 'temperature', 20 + k / 10, ts),
        reading('climate-1', 'humidity', k === 4 ? null : 80 - k, ts),
        reading('relay-1', 'relay_1', k % 2, ts + 5),
      );
    }
    store.append(stored);
    store.flush();
    const lines: string[] = [];
    const log = {
      debug: (o: object, m: string) => void lines.push(JSON.stringify(o) + m),
      info: (o: object, m: string) => void lines.push(JSON.stringify(o) + m),
      warn: (o: object, m: string) => void lines.push(JSON.stringify(o) + m),
      error: (o: object, m: string) => void lines.push(JSON.stringify(o) + m),
    };
    const p = await platform();
    await agentFor(store, { log }).start();
    await waitUntil(() => store.getCursor(SYNC_CURSOR) === 30, 10_000, 'backlog acknowledged');

    // the access token is the MQTT user name, and appears in no log line of the gateway
    expect(broker.log()).toContain(`u'${TOKEN}'`);
    expect(lines.join('\n')).not.toContain(TOKEN);

    const topics = p.seen.map((s) => s.topic);
    const firstTelemetry = topics.indexOf('v1/gateway/telemetry');
    expect(firstTelemetry).toBeGreaterThan(0);
    const connects = p.seen.slice(0, firstTelemetry).filter((s) => s.topic === 'v1/gateway/connect');
    expect(connects.map((c) => c.body)).toEqual([
      { device: `${GW}/climate-1`, type: 'xy-md02' },
      { device: `${GW}/relay-1`, type: 'relay' },
    ]);
    const attrs = p.seen.slice(0, firstTelemetry).find((s) => s.topic === 'v1/gateway/attributes')!;
    expect(attrs.body[`${GW}/climate-1`]).toMatchObject({
      name: 'Nhà kính 3',
      zone: 'Khu A',
      profile: 'xy-md02',
      model: 'XY-MD02',
    });

    const telemetry = p.seen.filter((s) => s.topic === 'v1/gateway/telemetry');
    // batched: 30 readings of 2 devices at 20 timestamps in one message, not one per device per poll
    expect(telemetry).toHaveLength(1);
    const body = telemetry[0]!.body as Record<string, { ts: number; values: Record<string, unknown> }[]>;
    expect(Object.keys(body).sort()).toEqual([`${GW}/climate-1`, `${GW}/relay-1`]);
    const climate = body[`${GW}/climate-1`]!;
    expect(climate).toHaveLength(10);
    expect(climate[0]).toEqual({ ts: t0, values: { temperature: 20, humidity: 80 } });
    // a failed read keeps the timestamp and says why, with no value
    expect(climate[4]).toEqual({ ts: t0 + 4 * 60_000, values: { temperature: 20.4, humidity_quality: 'timeout' } });
    expect(body[`${GW}/relay-1`]!.map((e) => e.values.relay_1)).toEqual(
      Array.from({ length: 10 }, (_, k) => k % 2 === 1),
    );
    expect(body[`${GW}/relay-1`]!.map((e) => e.ts)).toEqual(Array.from({ length: 10 }, (_, k) => t0 + k * 60_000 + 5));
  });

  it('after a broker restart, connects the devices again before the telemetry stored meanwhile, with its ts', async () => {
    const store = openStore();
    const p = await platform(true);
    const agent = agentFor(store);
    await agent.start();
    await waitUntil(() => p.seen.some((s) => s.topic === 'v1/gateway/attributes'), 10_000, 'first session');
    await broker.stop();
    await waitUntil(() => !agent.status().connected, 10_000, 'link down');
    const t0 = Date.now() - 5000;
    store.append([reading('climate-1', 'temperature', 19.5, t0), reading('relay-1', 'relay_1', 1, t0 + 1)]);
    store.flush();
    await broker.start();
    await waitUntil(() => p.seen.some((s) => s.topic === 'v1/gateway/telemetry'), 15_000, 'telemetry after restart');
    await waitUntil(() => store.getCursor(SYNC_CURSOR) === 2, 5_000, 'cursor on PUBACK');
    const second = p.seen.slice(p.seen.findIndex((s) => s.topic === 'v1/gateway/attributes') + 1);
    const telemetryAt = second.findIndex((s) => s.topic === 'v1/gateway/telemetry');
    expect(second.slice(0, telemetryAt).filter((s) => s.topic === 'v1/gateway/connect')).toHaveLength(2);
    expect(second[telemetryAt]!.body).toEqual({
      [`${GW}/climate-1`]: [{ ts: t0, values: { temperature: 19.5 } }],
      [`${GW}/relay-1`]: [{ ts: t0 + 1, values: { relay_1: true } }],
    });
    expect(agent.status()).toMatchObject({ connected: true, backlog: 0, cursor: 2, lastSeq: 2 });
  });

  it('answers RPC with FORBIDDEN when acceptRpc is off, and never reaches the router', async () => {
    const calls: CommandRequest[] = [];
    const p = await platform();
    await agentFor(openStore(), { commands: recordingExecutor(calls) }).start();
    await waitUntil(() => p.seen.some((s) => s.topic === 'v1/gateway/attributes'), 10_000, 'session start');
    await new Promise((r) => setTimeout(r, 200)); // the rpc subscription follows the announcements
    const rpc = {
      device: `${GW}/relay-1`,
      data: { id: 41, method: 'write', params: { point: 'relay_1', value: true } },
    };
    await p.client.publishAsync('v1/gateway/rpc', JSON.stringify(rpc), { qos: 1 });
    const reply = await waitUntil(
      () =>
        p.seen.find(
          (s) =>
            s.topic === 'v1/gateway/rpc' && s.body.id === 41 && s.body.data && !('method' in (s.body.data as object)),
        ),
      5_000,
      'RPC reply',
    );
    expect(reply.body).toMatchObject({ device: `${GW}/relay-1`, id: 41, data: { ok: false, code: 'FORBIDDEN' } });
    expect(calls).toEqual([]);
  });

  it("sends gap events as the gateway device's own telemetry", async () => {
    const store = openStore();
    const ts = Date.now() - 1000;
    store.recordEvent('gap', { gapId: 1, firstSeq: 11, lastSeq: 20, count: 10, reason: 'age_cap' });
    store.flush();
    const p = await platform();
    await agentFor(store).start();
    const own = await waitUntil(
      () => p.seen.find((s) => s.topic === 'v1/devices/me/telemetry'),
      10_000,
      'gateway telemetry',
    );
    const entries = own.body as unknown as { ts: number; values: Record<string, unknown> }[];
    expect(entries[0]!.ts).toBeGreaterThanOrEqual(ts - 5000);
    expect(entries[0]!.values).toEqual({ gap_first_seq: 11, gap_last_seq: 20, gap_count: 10, gap_reason: 'age_cap' });
    await waitUntil(() => store.getCursor(EVENTS_CURSOR) === 1, 5_000, 'events cursor moved on PUBACK');
  });
});

describe('langbiang start with sync.format: thingsboard', () => {
  let sim: ModbusSimulator;
  let gw: RunningCli | null = null;

  afterAll(async () => {
    gw?.child.kill('SIGKILL');
    await sim?.close();
  });

  it('round-trips a ThingsBoard RPC through the command router to a simulated Modbus relay', async () => {
    sim = await ModbusSimulator.tcp({
      units: [
        { unit: 1, profile: loadProfile('waveshare-modbus-rtu-relay-8ch') },
        { unit: 2, profile: loadProfile('xy-md02') },
      ],
    });
    const httpPort = await freePort();
    const config = join(dir, 'tb.yaml');
    writeFileSync(
      config,
      `gateway: { id: ${GW}, dataDir: ${dir}/tb-data, assumeClockSynced: true }
buses:
  - { id: tcp, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 500ms }
devices:
  - { id: relay-1, name: "Van tưới", zone: "Khu B", profile: waveshare-modbus-rtu-relay-8ch, bus: tcp, unit: 1, interval: 300ms, points: [relay_1] }
  - { id: climate-1, profile: xy-md02, bus: tcp, unit: 2, interval: 300ms }
storage: { batchMaxDelay: 100ms }
panel: { port: ${httpPort}, host: 127.0.0.1 }
sync:
  url: "${broker.url}"
  batchMaxDelay: 1s
  format: thingsboard
  thingsboard: { tokenFile: ${tokenFile}, acceptRpc: true }
`,
    );
    const p = await platform();
    gw = startCli(['start', '--config', config]);
    // one telemetry message holding both devices
    await waitUntil(
      () => p.seen.some((s) => s.topic === 'v1/gateway/telemetry' && Object.keys(s.body).length === 2),
      20_000,
      'a telemetry message with both devices',
    );
    expect(p.seen.find((s) => s.topic === 'v1/gateway/attributes')!.body[`${GW}/relay-1`]).toMatchObject({
      name: 'Van tưới',
      zone: 'Khu B',
      profile: 'waveshare-modbus-rtu-relay-8ch',
    });

    const health = (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()) as {
      sync?: { connected: boolean };
    };
    expect(health.sync).toMatchObject({ connected: true });

    expect(sim.getValue(1, 'relay_1')).toBe(0);
    const rpc = {
      device: `${GW}/relay-1`,
      data: { id: 7, method: 'write', params: { point: 'relay_1', value: true } },
    };
    await p.client.publishAsync('v1/gateway/rpc', JSON.stringify(rpc), { qos: 1 });
    const reply = await waitUntil(
      () =>
        p.seen.find(
          (s) =>
            s.topic === 'v1/gateway/rpc' && s.body.id === 7 && s.body.data && !('method' in (s.body.data as object)),
        ),
      10_000,
      'RPC reply',
    );
    expect(reply.body).toMatchObject({ device: `${GW}/relay-1`, id: 7, data: { ok: true } });
    expect(sim.getValue(1, 'relay_1')).toBe(1);

    // a write the router refuses comes back refused, with its code
    const bad = {
      device: `${GW}/climate-1`,
      data: { id: 8, method: 'write', params: { point: 'temperature', value: 5 } },
    };
    await p.client.publishAsync('v1/gateway/rpc', JSON.stringify(bad), { qos: 1 });
    const refused = await waitUntil(
      () =>
        p.seen.find(
          (s) =>
            s.topic === 'v1/gateway/rpc' && s.body.id === 8 && s.body.data && !('method' in (s.body.data as object)),
        ),
      10_000,
      'RPC refusal',
    );
    expect(refused.body).toMatchObject({ id: 8, data: { ok: false, code: 'NOT_WRITABLE' } });
    expect(gw.output()).not.toContain(TOKEN);

    gw.child.kill('SIGTERM');
    await gw.exited;
    // a clean stop disconnects the devices
    await waitUntil(() => p.seen.some((s) => s.topic === 'v1/gateway/disconnect'), 5_000, 'device disconnects');
  }, 60_000);
});
