import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';

/**
 * A broken flow must never hurt data collection. One real gateway (polling a simulator, storing
 * in SQLite, syncing to a real Mosquitto) runs Node-RED with a flow that, on a trigger coil,
 * crashes the runtime (an unhandled rejection), blocks its event loop forever, or allocates
 * without bound. For each: the runtime is restarted, a `flows` event is recorded, and readings
 * are polled, stored and synced at the baseline rate meanwhile.
 */

const TRIGGER = 6;

const FAULT_FLOWS = [
  { id: 'f0000000000000t1', type: 'tab', label: 'faults' },
  {
    id: 'f000000000000001',
    type: 'langbiang reading',
    z: 'f0000000000000t1',
    devices: 'trigger',
    points: 'relay_1,relay_2,relay_3',
    output: 'each',
    wires: [['f000000000000002']],
  },
  {
    // only a change seen by this runtime passes: a restarted runtime never fires on a steady 1
    id: 'f000000000000002',
    type: 'rbe',
    z: 'f0000000000000t1',
    func: 'rbei',
    gap: '',
    start: '',
    inout: 'out',
    septopics: true,
    property: 'payload',
    topi: 'topic',
    wires: [['f000000000000003']],
  },
  {
    id: 'f000000000000003',
    type: 'function',
    z: 'f0000000000000t1',
    name: 'route',
    func: "if (msg.payload !== 1) return null;\nreturn [msg.point === 'relay_1' ? msg : null, msg.point === 'relay_2' ? msg : null, msg.point === 'relay_3' ? msg : null];",
    outputs: 3,
    wires: [['f000000000000004'], ['f000000000000005'], ['f000000000000006']],
  },
  {
    id: 'f000000000000004',
    type: 'function',
    z: 'f0000000000000t1',
    name: 'throws',
    func: "Promise.reject(new Error('a flow bug nobody catches'));\nreturn msg;",
    outputs: 1,
    wires: [[]],
  },
  {
    id: 'f000000000000005',
    type: 'function',
    z: 'f0000000000000t1',
    name: 'loops',
    func: 'while (true) {}',
    outputs: 1,
    wires: [[]],
  },
  {
    id: 'f000000000000006',
    type: 'function',
    z: 'f0000000000000t1',
    name: 'leaks',
    func: "const hog = [];\nsetInterval(() => { for (let i = 0; i < 20000; i++) hog.push({ i, s: 'leak'.repeat(16) + i }); }, 5);\nreturn msg;",
    outputs: 1,
    wires: [[]],
  },
];

interface Health {
  lastSeq: number;
  sync?: { backlog: number; connected: boolean };
  flows?: { state: string; restarts: number; lastExit: { reason: string } | null };
}

interface Sample {
  at: number;
  stored: number;
  synced: number;
}

describe('a broken flow cannot stop polling, storing or syncing', () => {
  let sim: ModbusSimulator;
  let broker: Mosquitto;
  let gw: RunningCli;
  let port: number;
  let dataDir: string;
  const samples: Sample[] = [];
  let sampler: NodeJS.Timeout;

  const health = async (): Promise<Health> =>
    (await fetch(`http://127.0.0.1:${port}/healthz`)).json() as Promise<Health>;
  /** readings per second stored and synced over [from, to] */
  const rate = (from: number, to: number) => {
    const inside = samples.filter((s) => s.at >= from && s.at <= to);
    const a = inside[0]!;
    const b = inside[inside.length - 1]!;
    const s = (b.at - a.at) / 1000;
    return { stored: (b.stored - a.stored) / s, synced: (b.synced - a.synced) / s, seconds: s };
  };
  const flowsEvents = () => {
    const db = new Database(join(dataDir, 'langbiang.db'), { readonly: true, fileMustExist: true });
    try {
      return (db.prepare("SELECT data FROM events WHERE kind = 'flows' ORDER BY id").all() as { data: string }[]).map(
        (r) => JSON.parse(r.data) as Record<string, unknown>,
      );
    } finally {
      db.close();
    }
  };

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'langbiang-flows-iso-'));
    dataDir = join(dir, 'data');
    // the faulty flows instead of the default ones (a flow file present is never overwritten)
    mkdirSync(join(dataDir, 'flows'), { recursive: true });
    writeFileSync(join(dataDir, 'flows', 'flows.json'), JSON.stringify(FAULT_FLOWS));
    broker = await startMosquitto();
    sim = await ModbusSimulator.tcp({
      units: [
        { unit: 1, profile: loadProfile('comwintop-cwt-soil') },
        { unit: 4, profile: loadProfile('eastron-sdm120') },
        { unit: TRIGGER, profile: loadProfile('waveshare-modbus-rtu-relay-8ch') },
      ],
    });
    port = await freePort();
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `gateway: { id: dl-gw-flows-iso, dataDir: ${dataDir}, assumeClockSynced: true }
buses:
  - { id: sim, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 500ms }
devices:
  - { id: soil-a1, profile: comwintop-cwt-soil, bus: sim, unit: 1, interval: 250ms }
  - { id: meter-1, profile: eastron-sdm120, bus: sim, unit: 4, interval: 250ms }
  - { id: trigger, profile: waveshare-modbus-rtu-relay-8ch, bus: sim, unit: ${TRIGGER}, interval: 250ms }
storage: { batchMaxDelay: 200ms }
sync: { url: "${broker.url}", batchMaxDelay: 200ms }
panel: { port: ${port}, host: 127.0.0.1 }
flows:
  enabled: true
  maxHeap: 96MiB
  heartbeatTimeout: 3s
  restartDelay: 300ms
`,
    );
    gw = startCli(['start', '--config', config]);
    await gw.waitFor('node-red running', 60_000);
    sampler = setInterval(async () => {
      try {
        const h = await health();
        samples.push({ at: Date.now(), stored: h.lastSeq, synced: h.lastSeq - (h.sync?.backlog ?? h.lastSeq) });
      } catch {
        // a missed sample only widens the window
      }
    }, 250);
    // the runtime must see each trigger at 0 before a 1 counts as a change
    await new Promise((r) => setTimeout(r, 1500));
  }, 90_000);

  afterAll(async () => {
    clearInterval(sampler);
    gw?.child.kill('SIGKILL');
    await sim?.close();
    await broker?.close();
  });

  it('restarts the runtime after a crash, a blocked loop and a leak, records each, and data keeps flowing at its rate', async () => {
    const baselineFrom = Date.now();
    await new Promise((r) => setTimeout(r, 3000));
    const baseline = rate(baselineFrom, Date.now());
    expect(baseline.stored).toBeGreaterThan(20);
    expect(baseline.synced).toBeGreaterThan(20);

    const incidents: { coil: string; reasons: string[]; rate: ReturnType<typeof rate> }[] = [];
    for (const [coil, reasons] of [
      ['relay_1', ['exit']],
      ['relay_2', ['heartbeat']],
      ['relay_3', ['exit', 'memory']],
    ] as const) {
      const before = (await health()).flows!.restarts;
      const from = Date.now();
      sim.setValue(TRIGGER, coil, 1);
      const h = await waitUntil(
        async () => {
          const x = await health();
          return x.flows!.restarts > before && x.flows!.state === 'running' ? x : undefined;
        },
        40_000,
        `the runtime to be restarted after ${coil}`,
      ).catch((err) => {
        throw new Error(`${(err as Error).message}\n--- gateway output ---\n${gw.output().slice(-4000)}`);
      });
      sim.setValue(TRIGGER, coil, 0);
      // at least two seconds of samples, so a short incident still gives a fair rate, and at least
      // one second for the new runtime to see the next trigger at 0
      await new Promise((r) => setTimeout(r, Math.max(1000, 2000 - (Date.now() - from))));
      incidents.push({ coil, reasons: [...reasons], rate: rate(from, Date.now()) });
      expect(reasons).toContain(h.flows!.lastExit!.reason);
    }

    for (const i of incidents) {
      expect(i.rate.stored, `${i.coil}: stored/s vs baseline ${baseline.stored}`).toBeGreaterThan(
        baseline.stored * 0.6,
      );
      expect(i.rate.synced, `${i.coil}: synced/s vs baseline ${baseline.synced}`).toBeGreaterThan(
        baseline.synced * 0.6,
      );
    }

    const events = flowsEvents();
    expect(events.map((e) => e.state)).toEqual(['restarting', 'restarting', 'restarting']);
    expect(events[0]!.reason).toBe('exit');
    expect(events[1]!.reason).toBe('heartbeat');
    expect(['exit', 'memory']).toContain(events[2]!.reason);
    expect(gw.output()).toMatch(/a flow bug nobody catches/);
  }, 120_000);
});
