import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, startCli, waitUntil } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

/**
 * The default irrigation flow, end to end: simulated soil probe → gateway poll → store → Node-RED
 * (its own process) → langbiang irrigation → command router → simulated relay board. Durations
 * are shortened through flows.env, exactly as a technician would set them.
 */

const SOIL = 1;
const RELAY = 5;

interface Transition {
  value: number;
  at: number;
}

describe('the default irrigation flow drives the simulated valve from simulated moisture', () => {
  let sim: ModbusSimulator;
  let gw: RunningCli;
  let httpPort: number;
  let dataDir: string;
  const transitions: Transition[] = [];
  let monitor: NodeJS.Timeout;

  const relay = () => sim.getValue(RELAY, 'relay_1');
  const nextTransition = (to: number, after: number, timeoutMs: number, what: string) =>
    waitUntil(() => transitions.find((t) => t.value === to && t.at >= after), timeoutMs, what);

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'langbiang-flows-irr-'));
    dataDir = join(dir, 'data');
    sim = await ModbusSimulator.tcp({
      units: [
        { unit: SOIL, profile: loadProfile('comwintop-cwt-soil') },
        { unit: RELAY, profile: loadProfile('waveshare-modbus-rtu-relay-8ch') },
      ],
    });
    sim.setValue(SOIL, 'moisture', 50);
    sim.setValue(RELAY, 'relay_1', 1); // left open by a runtime that died: the flow must close it at start
    httpPort = await freePort();
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `gateway: { id: dl-gw-flows-irr, dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: sim, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 300ms }
devices:
  - { id: soil-a1, profile: comwintop-cwt-soil, bus: sim, unit: ${SOIL}, interval: 300ms }
  - { id: valves, profile: waveshare-modbus-rtu-relay-8ch, bus: sim, unit: ${RELAY}, interval: 1s }
storage: { batchMaxDelay: 200ms }
panel: { port: ${httpPort}, host: 127.0.0.1 }
flows:
  enabled: true
  env:
    IRRIGATION_THRESHOLD: 30
    IRRIGATION_HYSTERESIS: 5
    IRRIGATION_DRY_FOR: 2s
    IRRIGATION_MAX_OPEN: 4s
    IRRIGATION_MAX_PER_WINDOW: 10s
    IRRIGATION_WINDOW: 120s
    IRRIGATION_STALE_AFTER: 3s
`,
    );
    let last = relay();
    transitions.push({ value: last, at: Date.now() });
    monitor = setInterval(() => {
      const v = relay();
      if (v !== last) transitions.push({ value: v, at: Date.now() });
      last = v;
    }, 25);
    gw = startCli(['start', '--config', config]);
    await gw.waitFor('node-red running', 60_000);
  }, 90_000);

  afterAll(async () => {
    clearInterval(monitor);
    gw?.child.kill('SIGKILL');
    await sim?.close();
  });

  it('closes a valve left open, opens after dryFor, closes on a stale sensor, on recovery, after maxOpen and at the budget', async () => {
    // 0. start-up: the valve someone left open is closed, and stays closed while the soil is wet
    await nextTransition(0, 0, 10_000, 'the start-up close');
    await new Promise((r) => setTimeout(r, 1500));
    expect(relay()).toBe(0);

    // 1. dry soil: opens, but only after the moisture stayed low for dryFor (2 s)
    const dryAt = Date.now();
    sim.setValue(SOIL, 'moisture', 20);
    const open1 = await nextTransition(1, dryAt, 10_000, 'the valve to open on dry soil');
    expect(open1.at - dryAt).toBeGreaterThanOrEqual(2000);

    // 2. the probe stops answering while the valve is open: closes, and stays closed while the
    //    probe is dead although its last value was dry
    const deadAt = Date.now();
    sim.setBehaviour(SOIL, 'dead');
    const close1 = await nextTransition(0, deadAt, 15_000, 'the valve to close on a dead sensor');
    await new Promise((r) => setTimeout(r, 3000));
    expect(transitions.filter((t) => t.at > close1.at)).toEqual([]);

    // 3. the probe is back, still dry: after dryFor it opens again; moisture recovers → closes
    const aliveAt = Date.now();
    sim.setBehaviour(SOIL, 'normal');
    const open2 = await nextTransition(1, aliveAt, 20_000, 'the valve to reopen once the sensor is back');
    expect(open2.at - aliveAt).toBeGreaterThanOrEqual(2000);
    const wetAt = Date.now();
    sim.setValue(SOIL, 'moisture', 40);
    const close2 = await nextTransition(0, wetAt, 10_000, 'the valve to close on recovered moisture');
    expect(close2.at - open2.at).toBeLessThan(4000);

    // 4. dry and staying dry: each run ends at maxOpen (4 s); once 10 s of the window are used the
    //    valve stays shut however dry the soil is
    const dry2At = Date.now();
    sim.setValue(SOIL, 'moisture', 15);
    const open3 = await nextTransition(1, dry2At, 10_000, 'the third opening');
    const close3 = await nextTransition(0, open3.at, 10_000, 'the max-duration close');
    expect(close3.at - open3.at).toBeGreaterThanOrEqual(3500);
    expect(close3.at - open3.at).toBeLessThan(6000);
    const open4 = await nextTransition(1, close3.at, 10_000, 'the run after the soak');
    expect(open4.at - close3.at).toBeGreaterThanOrEqual(1800); // soaked for dryFor first
    let close4 = await nextTransition(0, open4.at, 10_000, 'the budget close');
    const runs = [
      [open1, close1],
      [open2, close2],
      [open3, close3],
      [open4, close4],
    ];
    const openTime = () => runs.reduce((sum, [o, c]) => sum + (c!.at - o!.at), 0);
    // How much of the budget the first runs used depends on command latency on a busy machine:
    // more max-duration runs may follow until the budget is spent; at most one run's worth.
    while (openTime() < 10_000 - 1500 && runs.length < 6) {
      const o = await nextTransition(1, close4.at, 10_000, 'a further run within the budget');
      close4 = await nextTransition(0, o.at, 10_000, 'its close');
      runs.push([o, close4]);
    }
    expect(openTime()).toBeLessThanOrEqual(10_000 + 1500); // the budget, plus command latency
    await new Promise((r) => setTimeout(r, 3000));
    expect(relay()).toBe(0);
    // budget spent: however dry the soil stays, no further opening (not even a short scrap)
    expect(transitions.filter((t) => t.at > close4.at)).toEqual([]);

    // the command audit says why each switch happened
    const db = new Database(join(dataDir, 'langbiang.db'), { readonly: true, fileMustExist: true });
    const audit = (db.prepare("SELECT data FROM events WHERE kind = 'command' ORDER BY id").all() as { data: string }[])
      .map(
        (r) =>
          JSON.parse(r.data) as {
            source: string;
            actor: string;
            point: string;
            value: unknown;
            result: { ok: boolean };
          },
      )
      .filter((e) => e.source === 'flows' && e.point === 'relay_1');
    db.close();
    expect(audit.every((e) => e.result.ok)).toBe(true);
    const reasons = audit.map((e) => /\(([a-z-]+)\)$/.exec(e.actor)?.[1]);
    expect(reasons[0]).toBe('startup');
    expect(reasons.slice(1, 3)).toEqual(['dry', expect.stringMatching(/^sensor-(offline|stale)$/)]);
    expect(reasons.slice(3, 7)).toEqual(['dry', 'recovered', 'dry', 'max-duration']);
    // then runs after each soak, ending at max-duration or at the budget; what is left of the
    // budget after the last one is less than a useful run (minRun), so it stays shut
    const tail = reasons.slice(7);
    expect(tail.length % 2).toBe(0);
    expect(tail.filter((_, i) => i % 2 === 0).every((r) => r === 'dry')).toBe(true);
    expect(tail.filter((_, i) => i % 2 === 1).every((r) => r === 'max-duration' || r === 'budget')).toBe(true);
  }, 90_000);
});
