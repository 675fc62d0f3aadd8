import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { NorthboundDevice } from '../../cloud-sync/northbound/agent.js';
import { SparkplugAgent, type SparkplugAgentOptions } from '../../cloud-sync/northbound/sparkplug/agent.js';
import type { CommandExecutor, CommandRequest } from '../../gateway/core/command.js';
import type { Reading } from '../../gateway/core/reading.js';
import { EVENTS_CURSOR, Store, SYNC_CURSOR } from '../../gateway/store/index.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { type DecodedMetric, type DecodedPayload, protocDecode } from '../helpers/sparkplug-protoc.js';

// Sparkplug B through a real Mosquitto; every payload is decoded by protoc from the shipped .proto,
// not by the encoder's library.
const GROUP = 'dalat-test';
const GW = 'dl-gw-spb';
const PROTO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cloud-sync', 'northbound', 'sparkplug');

let broker: Mosquitto;
let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];

interface Captured {
  topic: string;
  type: string;
  device?: string;
  payload: Buffer;
}

/** A Sparkplug host application's view: every message of the group, in arrival order. */
async function host(persistent = false): Promise<{
  messages: Captured[];
  client: mqtt.MqttClient;
  decoded(): (Captured & DecodedPayload)[];
}> {
  // persistent: a session the broker keeps across its restart, as a real host application's
  const client = await mqtt.connectAsync(
    broker.url,
    persistent
      ? { protocolVersion: 4, clean: false, clientId: `spb-host-${process.pid}`, reconnectPeriod: 200 }
      : { protocolVersion: 4, clean: true, reconnectPeriod: 0 },
  );
  const messages: Captured[] = [];
  client.on('message', (topic, payload) => {
    const [, , type, , device] = topic.split('/');
    messages.push({ topic, type: type!, device, payload: Buffer.from(payload) });
  });
  await client.subscribeAsync(`spBv1.0/${GROUP}/#`, { qos: 1 });
  cleanups.unshift(() => client.endAsync(true));
  return {
    messages,
    client,
    decoded: () => {
      const d = protocDecode(messages.map((m) => m.payload));
      return messages.map((m, i) => ({ ...m, ...d[i]! }));
    },
  };
}

/** An NCMD/DCMD payload made by protoc from text format (not by the gateway's encoder either). */
function protocEncode(text: string): Buffer {
  return execFileSync(
    'protoc',
    [`--proto_path=${PROTO_DIR}`, '--encode=org.eclipse.tahu.protobuf.Payload', join(PROTO_DIR, 'sparkplug_b.proto')],
    { input: text },
  );
}

const DEVICES: NorthboundDevice[] = [
  {
    id: 'climate-1',
    profile: 'xy-md02',
    points: [
      { name: 'temperature', unit: '°C', kind: 'number', writable: false },
      { name: 'humidity', unit: '%RH', kind: 'number', writable: false },
    ],
  },
  { id: 'relay-1', profile: 'relay', points: [{ name: 'relay_1', kind: 'boolean', writable: true }] },
];

function readings(from: number, n: number, t0: number): Reading[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    const relay = i % 3 === 2;
    return {
      device: relay ? 'relay-1' : 'climate-1',
      point: relay ? 'relay_1' : i % 3 ? 'humidity' : 'temperature',
      value: relay ? i % 2 : Math.round(i * 7) / 10,
      quality: 'good' as const,
      ts: t0 + i * 1000,
      mono: i,
      bootId: 'boot',
      synced: true,
      unit: relay ? undefined : i % 3 ? '%RH' : '°C',
    };
  });
}

function openStore(): Store {
  const s = Store.open({ dataDir: mkdtempSync(join(dir, 'store-')), batchMaxDelayMs: 20 });
  cleanups.push(() => s.close());
  return s;
}

function agentFor(store: Store, o: Partial<SparkplugAgentOptions> = {}): SparkplugAgent {
  const a = new SparkplugAgent({
    gatewayId: GW,
    groupId: GROUP,
    devices: DEVICES,
    outbox: store,
    events: store,
    url: broker.url,
    batchMaxDelayMs: 100,
    batchMaxReadings: 200,
    reconnectMinMs: 100,
    reconnectMaxMs: 500,
    tickMs: 50,
    cursorName: SYNC_CURSOR,
    eventsCursorName: EVENTS_CURSOR,
    persist: () => store.flush(),
    ...o,
  });
  cleanups.unshift(() => a.stop());
  return a;
}

const metricValue = (m: DecodedMetric) => m.double_value ?? m.boolean_value ?? m.long_value ?? m.string_value;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lb-spb-'));
  broker = await startMosquitto();
});
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});
afterAll(async () => {
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Sparkplug B agent (real store, real Mosquitto, protoc decoding)', () => {
  it('births before data, aliases and timestamps in DDATA, backlog historical, live not, seq in step', async () => {
    const store = openStore();
    const t0 = Date.now() - 3_600_000;
    store.append(readings(1, 30, t0));
    store.flush();
    const h = await host();
    const agent = agentFor(store);
    await agent.start();
    await waitUntil(() => store.getCursor(SYNC_CURSOR) === 30, 10_000, 'backlog acknowledged');
    const tLive = Date.now();
    store.append(readings(31, 6, tLive - 31_000));
    store.flush();
    agent.wake();
    await waitUntil(() => store.getCursor(SYNC_CURSOR) === 36, 10_000, 'live acknowledged');

    const msgs = h.decoded();
    expect(msgs[0]!.type).toBe('NBIRTH');
    expect(msgs[0]!.seq).toBe(0);
    const bd = msgs[0]!.metrics.find((m) => m.name === 'bdSeq')!;
    expect(bd).toMatchObject({ datatype: 4, long_value: 0 });
    expect(msgs[0]!.metrics.find((m) => m.name === 'Node Control/Rebirth')).toMatchObject({
      datatype: 11,
      boolean_value: false,
    });
    // every message of the node after NBIRTH carries the next seq
    expect(msgs.map((m) => m.seq)).toEqual(msgs.map((_, i) => i % 256));

    const aliases = new Map<string, Map<number, DecodedMetric>>();
    const seen: { device: string; point: string; ts: number; value: unknown; historical: boolean }[] = [];
    for (const m of msgs) {
      if (m.type === 'DBIRTH') {
        const byAlias = new Map<number, DecodedMetric>();
        for (const metric of m.metrics) {
          expect(metric.name).toBeTruthy();
          expect(metric.alias).toBeGreaterThan(0);
          byAlias.set(metric.alias!, metric);
        }
        aliases.set(m.device!, byAlias);
      }
      if (m.type === 'DDATA') {
        const byAlias = aliases.get(m.device!);
        expect(byAlias, `DBIRTH of ${m.device} before its DDATA`).toBeDefined();
        for (const metric of m.metrics) {
          expect(metric.name).toBeUndefined();
          const born = byAlias!.get(metric.alias!)!;
          expect(born, `alias ${metric.alias} born`).toBeDefined();
          seen.push({
            device: m.device!,
            point: born.name!,
            ts: metric.timestamp!,
            value: metricValue(metric),
            historical: metric.is_historical === true,
          });
        }
      }
    }
    // DBIRTH: every metric, datatype and engineering unit
    const climate = [...aliases.get('climate-1')!.values()];
    expect(climate.map((m) => m.name).sort()).toEqual(['humidity', 'temperature']);
    const temp = climate.find((m) => m.name === 'temperature')!;
    expect(temp.datatype).toBe(10);
    expect(temp.properties!.keys).toContain('engUnit');
    expect(temp.properties!.values[temp.properties!.keys.indexOf('engUnit')]).toMatchObject({ string_value: '°C' });
    expect([...aliases.get('relay-1')!.values()][0]).toMatchObject({ name: 'relay_1', datatype: 11 });

    const expected = readings(1, 36, 0).map((r, k) => ({
      device: r.device,
      point: r.point,
      ts: k < 30 ? t0 + (k + 1) * 1000 : tLive - 31_000 + (k + 1) * 1000,
      value: r.device === 'relay-1' ? r.value === 1 : r.value,
      historical: k < 30,
    }));
    const key = (x: { device: string; point: string; ts: number }) => `${x.device}/${x.point}@${x.ts}`;
    expect([...seen].sort((a, b) => key(a).localeCompare(key(b)))).toEqual(
      [...expected].sort((a, b) => key(a).localeCompare(key(b))),
    );
  });

  it('wraps seq from 255 to 0 (one DDATA per reading)', async () => {
    const store = openStore();
    store.append(readings(1, 300, Date.now() - 600_000));
    store.flush();
    const h = await host();
    await agentFor(store, { batchMaxReadings: 1 }).start();
    await waitUntil(() => store.getCursor(SYNC_CURSOR) === 300, 20_000, '300 readings acknowledged');
    const msgs = h.decoded();
    expect(msgs.length).toBeGreaterThan(300);
    const seqs = msgs.map((m) => m.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i % 256));
    expect(seqs.indexOf(0, 1)).toBe(256);
    expect(seqs[255]).toBe(255);
  });

  it('splits batches over batchMaxBytes without skipping a seq or losing a reading', async () => {
    const store = openStore();
    store.append(readings(1, 300, Date.now() - 600_000));
    store.flush();
    const h = await host();
    await agentFor(store, { batchMaxReadings: 200, batchMaxBytes: 1024 }).start();
    await waitUntil(() => store.getCursor(SYNC_CURSOR) === 300, 20_000, '300 readings acknowledged');
    const msgs = h.decoded();
    expect(msgs.map((m) => m.seq)).toEqual(msgs.map((_, i) => i % 256));
    const data = msgs.filter((m) => m.type === 'DDATA');
    for (const m of data) expect(m.payload.length).toBeLessThanOrEqual(1024);
    expect(data.reduce((n, m) => n + m.metrics.length, 0)).toBe(300);
  });

  it('after a broker restart: a new bdSeq, births again, and what was stored meanwhile re-sent from SQLite as historical', async () => {
    const store = openStore();
    const h = await host(true);
    const agent = agentFor(store);
    await agent.start();
    await waitUntil(() => h.messages.some((m) => m.type === 'DBIRTH'), 10_000, 'first session');
    await broker.stop();
    await waitUntil(() => !agent.status().connected, 10_000, 'link down');
    const t0 = Date.now() - 10_000;
    store.append(readings(1, 12, t0));
    store.flush();
    agent.wake();
    await broker.start();
    await waitUntil(() => store.getCursor(SYNC_CURSOR) === 12, 15_000, 'the outage readings acknowledged');
    await waitUntil(
      () =>
        h
          .decoded()
          .filter((m) => m.type === 'DDATA')
          .flatMap((m) => m.metrics).length === 12,
      10_000,
      '12 readings at the host',
    );
    const msgs = h.decoded();
    const births = msgs.flatMap((m, i) => (m.type === 'NBIRTH' ? [i] : []));
    expect(births).toHaveLength(2);
    const bdSeqs = births.map((i) => msgs[i]!.metrics.find((m) => m.name === 'bdSeq')!.long_value!);
    // at least one more CONNECT happened (the attempts while the broker was down count too)
    expect(bdSeqs[1]!).toBeGreaterThan(bdSeqs[0]!);
    const after = msgs.slice(births[1]);
    const firstData = after.findIndex((m) => m.type === 'DDATA');
    expect(after.slice(1, firstData).every((m) => m.type === 'DBIRTH')).toBe(true);
    const metrics = after.filter((m) => m.type === 'DDATA').flatMap((m) => m.metrics);
    expect(metrics).toHaveLength(12);
    expect(metrics.every((m) => m.is_historical === true)).toBe(true);
    expect(metrics.map((m) => m.timestamp).sort()).toEqual(
      readings(1, 12, t0)
        .map((r) => r.ts)
        .sort(),
    );
  });

  it('honours Node Control/Rebirth; refuses DCMD unless acceptCommands is on', async () => {
    const calls: CommandRequest[] = [];
    const executor: CommandExecutor = {
      execute: async (req) => {
        calls.push(req);
        return { id: req.id, ok: true, ts: Date.now() };
      },
    };
    const warnings: string[] = [];
    const log = {
      debug() {},
      info() {},
      warn: (_o: object, msg: string) => void warnings.push(msg),
      error() {},
    };
    const store = openStore();
    const h = await host();
    const agent = agentFor(store, { commands: executor, log });
    await agent.start();
    await waitUntil(() => h.messages.filter((m) => m.type === 'DBIRTH').length === 2, 10_000, 'births');

    const rebirth = protocEncode('metrics { name: "Node Control/Rebirth" datatype: 11 boolean_value: true }');
    await h.client.publishAsync(`spBv1.0/${GROUP}/NCMD/${GW}`, rebirth, { qos: 1 });
    await waitUntil(() => h.messages.filter((m) => m.type === 'NBIRTH').length === 2, 10_000, 'second NBIRTH');
    await waitUntil(() => h.messages.filter((m) => m.type === 'DBIRTH').length === 4, 10_000, 'second DBIRTHs');
    const births = h.decoded().filter((m) => m.type === 'NBIRTH');
    expect(births[1]!.seq).toBe(0);
    // the same session, so the same bdSeq as the will
    expect(births[1]!.metrics.find((m) => m.name === 'bdSeq')!.long_value).toBe(
      births[0]!.metrics.find((m) => m.name === 'bdSeq')!.long_value,
    );

    const write = protocEncode('metrics { name: "relay_1" datatype: 11 boolean_value: true }');
    await h.client.publishAsync(`spBv1.0/${GROUP}/DCMD/${GW}/relay-1`, write, { qos: 1 });
    await waitUntil(() => warnings.some((w) => w.includes('DCMD refused')), 5_000, 'the refusal logged');
    await new Promise((r) => setTimeout(r, 300));
    expect(calls).toEqual([]);
  });

  it('sends DCMD writes to the command router when acceptCommands is on', async () => {
    const calls: CommandRequest[] = [];
    const executor: CommandExecutor = {
      execute: async (req) => {
        calls.push(req);
        return { id: req.id, ok: true, ts: Date.now() };
      },
    };
    const store = openStore();
    const h = await host();
    await agentFor(store, { commands: executor, acceptCommands: true }).start();
    await waitUntil(() => h.messages.filter((m) => m.type === 'DBIRTH').length === 2, 10_000, 'births');
    const births = h.decoded().filter((m) => m.type === 'DBIRTH' && m.device === 'relay-1');
    const alias = births[0]!.metrics[0]!.alias!;
    // by alias, as a host that read the DBIRTH sends it
    const write = protocEncode(`metrics { alias: ${alias} datatype: 11 boolean_value: true }`);
    await h.client.publishAsync(`spBv1.0/${GROUP}/DCMD/${GW}/relay-1`, write, { qos: 1 });
    await waitUntil(() => calls.length === 1, 5_000, 'the write at the router');
    expect(calls[0]).toMatchObject({ device: 'relay-1', point: 'relay_1', value: true, source: 'mqtt' });
  });

  it('publishes gap events as NDATA of the gap metrics born in NBIRTH', async () => {
    const store = openStore();
    store.recordEvent('gap', { gapId: 1, firstSeq: 5, lastSeq: 9, count: 5, reason: 'byte_cap' });
    store.flush();
    const h = await host();
    await agentFor(store).start();
    await waitUntil(() => h.messages.some((m) => m.type === 'NDATA'), 10_000, 'NDATA');
    const msgs = h.decoded();
    const born = new Set(msgs[0]!.metrics.map((m) => m.name));
    const ndata = msgs.find((m) => m.type === 'NDATA')!;
    for (const m of ndata.metrics) expect(born.has(m.name)).toBe(true);
    expect(Object.fromEntries(ndata.metrics.map((m) => [m.name, metricValue(m)]))).toEqual({
      'Store/Gap first seq': 5,
      'Store/Gap last seq': 9,
      'Store/Gap count': 5,
      'Store/Gap reason': 'byte_cap',
    });
  });
});

describe('langbiang start with sync.format: sparkplug', () => {
  let sim: ModbusSimulator;
  let gw: RunningCli | null = null;

  afterAll(async () => {
    gw?.child.kill('SIGKILL');
    await sim?.close();
  });

  it('pairs NDEATH (the will, after SIGKILL) with the NBIRTH bdSeq, moves bdSeq on restart, writes a DCMD to the device', async () => {
    sim = await ModbusSimulator.tcp({ units: [{ unit: 1, profile: loadProfile('waveshare-modbus-rtu-relay-8ch') }] });
    const httpPort = await freePort();
    const config = join(dir, 'spb.yaml');
    writeFileSync(
      config,
      `gateway: { id: ${GW}, dataDir: ${dir}/spb-data, assumeClockSynced: true }
buses:
  - { id: tcp, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 500ms }
devices:
  - { id: relay-1, profile: waveshare-modbus-rtu-relay-8ch, bus: tcp, unit: 1, interval: 300ms, points: [relay_1, relay_2] }
storage: { batchMaxDelay: 100ms }
panel: { port: ${httpPort}, host: 127.0.0.1 }
sync:
  url: "${broker.url}"
  batchMaxDelay: 300ms
  format: sparkplug
  sparkplug: { groupId: ${GROUP}, acceptCommands: true }
`,
    );
    const h = await host();
    const bdSeqOf = (type: string, n = 0) =>
      h
        .decoded()
        .filter((m) => m.type === type)
        [n]?.metrics.find((m) => m.name === 'bdSeq')?.long_value;

    gw = startCli(['start', '--config', config]);
    await waitUntil(() => h.messages.some((m) => m.type === 'DDATA'), 20_000, 'DDATA from the gateway');
    const first = bdSeqOf('NBIRTH');
    expect(first).toBeTypeOf('number');
    gw.child.kill('SIGKILL');
    await gw.exited;
    await waitUntil(() => h.messages.some((m) => m.type === 'NDEATH'), 10_000, 'NDEATH (the will)');
    expect(bdSeqOf('NDEATH')).toBe(first);

    gw = startCli(['start', '--config', config]);
    await waitUntil(() => h.messages.filter((m) => m.type === 'NBIRTH').length === 2, 20_000, 'NBIRTH after restart');
    expect(bdSeqOf('NBIRTH', 1)).toBe((first! + 1) % 256);

    expect(sim.getValue(1, 'relay_1')).toBe(0);
    const write = protocEncode('metrics { name: "relay_1" datatype: 11 boolean_value: true }');
    await h.client.publishAsync(`spBv1.0/${GROUP}/DCMD/${GW}/relay-1`, write, { qos: 1 });
    await waitUntil(() => sim.getValue(1, 'relay_1') === 1, 10_000, 'relay_1 switched on in the simulator');
    // the new state comes back as data
    await waitUntil(
      () =>
        h
          .decoded()
          .slice(-20)
          .some((m) => m.type === 'DDATA' && m.metrics.some((x) => x.boolean_value === true)),
      10_000,
      'relay_1 true in DDATA',
    );
    // a clean stop says goodbye itself, with the session's bdSeq
    gw.child.kill('SIGTERM');
    await gw.exited;
    await waitUntil(() => h.messages.filter((m) => m.type === 'NDEATH').length === 2, 5_000, 'NDEATH on clean stop');
    expect(bdSeqOf('NDEATH', 1)).toBe(bdSeqOf('NBIRTH', 1));
  }, 90_000);
});
