import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  openReceiverStore,
  type ReceivedReading,
  Receiver,
  type ReceiverStore,
} from '../../cloud-sync/receiver/index.js';
import type { GapEvent } from '../../gateway/core/reading.js';
import { Store } from '../../gateway/store/index.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * The promise of the data path, tested end to end with real processes: whatever happens to the
 * gateway's power, the link and the broker, the receiver ends up holding exactly the readings the
 * gateway stored — none missing, none twice — and what the gateway had to drop arrives as a gap.
 */

let broker: Mosquitto;
let dir: string;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
const gateways = new Set<RunningCli>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'langbiang-faults-'));
  broker = await startMosquitto();
});

afterAll(async () => {
  for (const g of gateways) g.child.kill('SIGKILL');
  for (const c of cleanups.reverse()) await c();
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface GatewaySetup {
  id: string;
  dataDir: string;
  configFile: string;
  write(opts: { polling: boolean }): void;
}

async function gatewaySetup(
  id: string,
  brokerUrl: string,
  buses: { id: string; port: number }[],
  devices: { id: string; profile: string; bus: string; unit: number; interval: string }[],
  storage: string,
  sync: string,
): Promise<GatewaySetup> {
  const dataDir = join(dir, id);
  const configFile = join(dir, `${id}.yaml`);
  const httpPort = await freePort();
  return {
    id,
    dataDir,
    configFile,
    write({ polling }) {
      writeFileSync(
        configFile,
        [
          `gateway: { id: ${id}, dataDir: ${dataDir}, assumeClockSynced: true }`,
          'buses:',
          ...buses.map(
            (b) => `  - { id: ${b.id}, type: modbus-tcp, host: 127.0.0.1, port: ${b.port}, timeout: 300ms }`,
          ),
          'devices:',
          ...devices.map(
            (d) =>
              `  - { id: ${d.id}, profile: ${d.profile}, bus: ${d.bus}, unit: ${d.unit}, interval: ${d.interval}, enabled: ${polling} }`,
          ),
          `storage: ${storage}`,
          `sync: { url: ${brokerUrl}, ${sync} }`,
          `panel: { port: ${httpPort}, host: 127.0.0.1 }`,
          '',
        ].join('\n'),
      );
    },
  };
}

function startGateway(g: GatewaySetup): RunningCli {
  const gw = startCli(['start', '--config', g.configFile]);
  gateways.add(gw);
  void gw.exited.then(() => gateways.delete(gw));
  return gw;
}

async function kill9(gw: RunningCli): Promise<void> {
  gw.child.kill('SIGKILL');
  await gw.exited;
}

/** What the gateway's own store holds (read-only, beside the running gateway). */
function gatewayStore<T>(g: GatewaySetup, fn: (s: Store) => T): T {
  const s = Store.open({ dataDir: g.dataDir, readonly: true });
  try {
    return fn(s);
  } finally {
    s.close();
  }
}

async function receiverFor(name: string): Promise<{ store: ReceiverStore; receiver: Receiver }> {
  const store = await openReceiverStore(join(dir, `${name}.db`));
  const receiver = new Receiver({
    brokerUrl: broker.url,
    store,
    clientId: `recv-${name}`,
    group: name,
    // A shared subscription, although Mosquitto 2.0.11 forgets shared subscriptions when it
    // restarts: what the broker acknowledges and then delivers to no one is not confirmed by the
    // receiver, so the gateway sends it again (end-to-end acknowledgement).
    reconnectMinMs: 200,
    reconnectMaxMs: 1000,
  });
  await receiver.start();
  await receiver.ready();
  cleanups.push(() => receiver.stop());
  return { store, receiver };
}

async function allReadings(store: ReceiverStore): Promise<ReceivedReading[]> {
  const out: ReceivedReading[] = [];
  for await (const page of store.readings()) out.push(...page);
  return out;
}

describe('sync under faults (real gateway processes, Mosquitto, a TCP proxy, the reference receiver)', () => {
  it('kill -9 at random moments, broker restarts, dropped and stalled links: the receiver holds exactly what the gateway stored', async () => {
    const seed = Number(process.env.LANGBIANG_FAULT_SEED ?? Date.now() % 100_000);
    const rnd = seededRandom(seed);
    const sim = await ModbusSimulator.tcp({
      units: [
        { unit: 1, profile: loadProfile('eastron-sdm120') },
        { unit: 2, profile: loadProfile('comwintop-cwt-soil') },
        { unit: 3, profile: loadProfile('xy-md02') },
      ],
    });
    cleanups.push(() => sim.close());
    const proxy: TcpProxy = await startTcpProxy({ port: broker.port });
    cleanups.push(() => proxy.close());
    const { store, receiver } = await receiverFor('faults');
    const g = await gatewaySetup(
      'dl-gw-faults',
      proxy.url,
      [{ id: 'cabinet', port: sim.port }],
      [
        { id: 'meter-1', profile: 'eastron-sdm120', bus: 'cabinet', unit: 1, interval: '200ms' },
        { id: 'soil-1', profile: 'comwintop-cwt-soil', bus: 'cabinet', unit: 2, interval: '200ms' },
        { id: 'climate-1', profile: 'xy-md02', bus: 'cabinet', unit: 3, interval: '200ms' },
      ],
      '{ batchMaxDelay: 100ms }',
      // a short confirmation timeout so that what a restarted broker dropped comes again within the test
      'batchMaxReadings: 40, batchMaxDelay: 200ms, backlogRate: 3000, confirmTimeout: 3s',
    );
    g.write({ polling: true });
    const log: string[] = [`seed ${seed}`];
    let gw = startGateway(g);
    await waitUntil(
      async () => (await store.counts()).readings > 0,
      30_000,
      'the first readings at the receiver',
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n--- gateway output ---\n${gw.output().slice(-3000)}`);
    });

    const kills = 12;
    for (let i = 0; i < kills; i++) {
      // a random moment while it polls, stores and syncs (every third one: during its start-up)
      if (i % 3 !== 0) await gw.waitFor('polling started', 30_000);
      await sleep(200 + Math.floor(rnd() * 1300));
      if (i === 2) {
        proxy.drop(); // modem reset: both sockets gone at once
        log.push(`${i}: drop`);
        await sleep(Math.floor(rnd() * 600));
      } else if (i === 9) {
        proxy.drop();
        log.push(`${i}: drop, reconnect while running`);
        await sleep(2500);
      } else if (i === 10) {
        await broker.stop();
        await sleep(800);
        await broker.start();
        log.push(`${i}: broker restart while running`);
        await sleep(2000);
      } else if (i === 4) {
        proxy.stall(); // bytes stop, nothing closes; the kill comes mid-stall
        log.push(`${i}: stall`);
        await sleep(800);
      } else if (i === 7) {
        await broker.stop();
        log.push(`${i}: broker stopped`);
        await sleep(300);
      }
      await kill9(gw);
      log.push(`${i}: kill -9`);
      gw = startGateway(g);
      if (i === 4) {
        await sleep(1000); // the new gateway's connection stalls too until the link comes back
        proxy.resume();
        log.push(`${i}: resume`);
      } else if (i === 7) {
        await sleep(1000);
        await broker.start();
        log.push(`${i}: broker started`);
      } else if (i === 5) {
        // a stall of a running, connected gateway that ends before anyone gives up on the link
        await gw.waitFor('connected to the broker', 20_000);
        await sleep(300);
        proxy.stall();
        await sleep(1500);
        proxy.resume();
        log.push(`${i}: short stall while running`);
      }
    }
    await sleep(1000);
    await kill9(gw);

    // The same gateway with polling off: nothing new is stored, the backlog drains.
    g.write({ polling: false });
    gw = startGateway(g);
    await waitUntil(
      async () => (await store.counts()).readings >= gatewayStore(g, (s) => s.stats()).readings,
      60_000,
      `the receiver to hold every reading the gateway stored (${log.join(', ')})`,
    ).catch(async (err) => {
      // say what is missing and what the gateway thinks it delivered (its durable cursor)
      const seqs = new Set((await allReadings(store)).map((r) => r.seq));
      const st = gatewayStore(g, (s) => ({ lastSeq: s.stats().lastSeq, cursor: s.getCursor('sync') }));
      const missing: number[] = [];
      for (let q = 1; q <= st.lastSeq; q++) if (!seqs.has(q)) missing.push(q);
      throw new Error(
        `${(err as Error).message}\ngateway ${JSON.stringify(st)}; receiver ${JSON.stringify(receiver.stats())}; ` +
          `${missing.length} missing, from ${missing.slice(0, 5).join(',')} to ${missing.slice(-3).join(',')}\n` +
          `--- gateway sync log ---\n${gw
            .output()
            .split('\n')
            .filter((l) => l.includes('"part":"sync"'))
            .slice(-20)
            .join('\n')}`,
      );
    });
    // a moment for any late duplicate to show up where it must not
    await sleep(500);
    gw.child.kill('SIGTERM');
    await gw.exited;
    const held = gatewayStore(g, (s) => s.stats());
    expect(held.gaps).toBe(0);
    expect(held.readings).toBeGreaterThan(500);

    const rows = await allReadings(store);
    const context = `${log.join(', ')}; receiver ${JSON.stringify(receiver.stats())}`;
    expect(rows.length, context).toBe(held.readings);
    expect(new Set(rows.map((r) => r.epoch)).size).toBe(1);
    // exactly the gateway's seqs, each once
    expect(
      rows.map((r) => r.seq),
      context,
    ).toEqual(Array.from({ length: held.lastSeq - held.firstSeq + 1 }, (_, i) => held.firstSeq + i));
    // each device's readings in seq order are in time order too
    const lastTs = new Map<string, number>();
    for (const r of rows) {
      const key = `${r.device}/${r.point}`;
      expect(r.ts, `${key} seq ${r.seq}`).toBeGreaterThanOrEqual(lastTs.get(key) ?? 0);
      lastTs.set(key, r.ts);
    }
    expect(new Set(rows.map((r) => r.device))).toEqual(new Set(['meter-1', 'soil-1', 'climate-1']));

    // and the two exports agree line for line, the receiver's with the gateway column first
    const atGateway = await runCli(['export', '--data-dir', g.dataDir]);
    const atReceiver = await runCli(['export', '--receiver-db', join(dir, 'faults.db')]);
    expect(atGateway.code, atGateway.stderr).toBe(0);
    expect(atReceiver.code, atReceiver.stderr).toBe(0);
    const gl = atGateway.stdout.trimEnd().split('\n');
    const rl = atReceiver.stdout.trimEnd().split('\n');
    expect(rl[0]).toBe(`gateway,${gl[0]}`);
    expect(rl.slice(1)).toEqual(gl.slice(1).map((l) => `dl-gw-faults,${l}`));
    expect(receiver.stats().malformed).toBe(0);
  }, 180_000);

  it('broker down until the byte cap is reached: the dropped readings arrive as a gap event with the right count and seq range', async () => {
    const sdm630 = loadProfile('eastron-sdm630');
    const sims = await Promise.all(
      [0, 1].map(() => ModbusSimulator.tcp({ units: [1, 2, 3].map((unit) => ({ unit, profile: sdm630 })) })),
    );
    cleanups.push(() => Promise.all(sims.map((s) => s.close())));
    const { store } = await receiverFor('bytecap');
    const g = await gatewaySetup(
      'dl-gw-cap',
      broker.url,
      sims.map((s, i) => ({ id: `bus-${i}`, port: s.port })),
      sims.flatMap((_, b) =>
        [1, 2, 3].map((unit) => ({
          id: `meter-${b}-${unit}`,
          profile: 'eastron-sdm630',
          bus: `bus-${b}`,
          unit,
          interval: '100ms',
        })),
      ),
      '{ maxBytes: 1MiB, batchMaxDelay: 200ms }',
      'batchMaxReadings: 1000, batchMaxDelay: 500ms, backlogRate: 20000, confirmTimeout: 3s',
    );
    g.write({ polling: true });
    // the receiver's session is on the broker (and saved with it); the gateway has never connected
    await broker.stop();
    let gw = startGateway(g);
    const firstGaps = await waitUntil(
      () => {
        try {
          const gaps = gatewayStore(g, (s) => s.gapsAfter(0));
          return gaps.length > 0 ? gaps : undefined;
        } catch {
          return undefined; // not created yet
        }
      },
      90_000,
      'the gateway to reach its byte cap and record a gap',
    );
    expect(firstGaps[0]!.reason).toBe('byte_cap');
    await kill9(gw);
    g.write({ polling: false });
    await broker.start();
    gw = startGateway(g);
    await waitUntil(
      async () => {
        const c = await store.counts();
        const h = gatewayStore(g, (s) => ({ readings: s.stats().readings, gaps: s.gapsAfter(0).length }));
        return c.readings >= h.readings && c.events >= h.gaps;
      },
      60_000,
      'the receiver to hold every reading the gateway kept and every gap event',
    );
    await sleep(300);
    gw.child.kill('SIGTERM');
    await gw.exited;
    const held = gatewayStore(g, (s) => ({ stats: s.stats(), gaps: s.gapsAfter(0) }));
    const gaps: GapEvent[] = held.gaps;
    expect(gaps.length).toBeGreaterThan(0);

    // The gap events say exactly what the gateway dropped: nothing had been sent, so every
    // dropped reading is in one, and the first starts at seq 1.
    const events = (await store.events({ kind: 'gap' })).filter((e) => e.gateway === 'dl-gw-cap');
    expect(
      events.map((e) => ({
        firstSeq: e.data.firstSeq,
        lastSeq: e.data.lastSeq,
        count: e.data.count,
        reason: e.data.reason,
      })),
    ).toEqual(gaps.map((x) => ({ firstSeq: x.firstSeq, lastSeq: x.lastSeq, count: x.count, reason: 'byte_cap' })));
    expect(gaps[0]!.firstSeq).toBe(1);
    for (const x of gaps) expect(x.count).toBe(x.lastSeq - x.firstSeq + 1);

    // every seq up to the last is either at the receiver or named by a gap, never both
    const rows = await allReadings(store);
    expect(rows.length).toBe(held.stats.readings);
    const seen = new Set(rows.map((r) => r.seq));
    expect(seen.size).toBe(rows.length);
    let dropped = 0;
    for (const x of gaps) {
      for (let s = x.firstSeq; s <= x.lastSeq; s++)
        expect(seen.has(s), `seq ${s} is in a gap and at the receiver`).toBe(false);
      dropped += x.count;
    }
    expect(dropped + rows.length).toBe(held.stats.lastSeq);
  }, 180_000);
});
