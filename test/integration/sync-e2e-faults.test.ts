import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openReceiverStore, type ReceiverStore } from '../../cloud-sync/receiver/index.js';
import { CONFIRMED_CURSOR, Store } from '../../gateway/store/index.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { type Postgres, startPostgres } from '../helpers/postgres.js';
import { seededRandom } from '../helpers/seeded-random.js';

/**
 * Exactly once to the city whatever the broker does. A broker without persistence that is killed
 * with SIGKILL forgets every session, every queued message and every shared subscription: what
 * it had acknowledged to the gateway (PUBACK) and not yet delivered reaches no one. Only the
 * receivers' end-to-end acknowledgement tells the gateway what the city stored; the rest is sent
 * again. Real processes throughout: gateways and receivers are `langbiang` CLIs, killed with SIGKILL.
 */

let broker: Mosquitto;
let pg: Postgres;
let dir: string;
const children = new Set<RunningCli>();
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'langbiang-e2e-faults-'));
  [broker, pg] = await Promise.all([startMosquitto({ persistence: false }), startPostgres()]);
}, 60_000);

afterAll(async () => {
  for (const c of children) c.child.kill('SIGKILL');
  for (const c of cleanups.reverse()) await c();
  await broker?.close();
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

// A failed scenario must not leave its processes behind: its receivers would stay on the shared
// subscription and take (and acknowledge into their own database) the next scenario's batches.
afterEach(async () => {
  const left = [...children];
  for (const c of left) c.child.kill('SIGKILL');
  await Promise.all(left.map((c) => c.exited));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** 1,2,3,7,8 → [[1,3],[7,8]]: a readable list of what is missing. */
function missingRanges(seqs: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const q of seqs) {
    const last = out[out.length - 1];
    if (last && last[1] + 1 === q) last[1] = q;
    else out.push([q, q]);
  }
  return out;
}

function spawnCli(args: string[]): RunningCli {
  const c = startCli(args);
  children.add(c);
  void c.exited.then(() => children.delete(c));
  return c;
}

async function kill9(c: RunningCli): Promise<void> {
  c.child.kill('SIGKILL');
  await c.exited;
}

interface Scenario {
  name: string;
  /** receiver database URL (a file for SQLite, postgres://… for PostgreSQL) */
  db: string;
  /** receivers on one shared subscription */
  receivers: number;
  /** extra receiver flags */
  receiverArgs?: string[];
}

const allReceivers: RunningCli[] = [];
function startReceiver(db: string, clientId: string, extra: string[] = []): RunningCli {
  // no --exclusive: the shared subscription, which Mosquitto forgets in a crash
  const r = spawnCli([
    'receiver',
    '--broker',
    broker.url,
    '--db',
    db,
    '--client-id',
    clientId,
    '--group',
    'city',
    '--stats-interval',
    '0',
    ...extra,
    ...(process.env.LANGBIANG_FAULT_DUMP ? ['--verbose'] : []),
  ]);
  allReceivers.push(r);
  return r;
}

/** Runs the scenario; returns what each of its receivers printed. */
async function runScenario(s: Scenario): Promise<string[]> {
  const seed = Number(process.env.LANGBIANG_FAULT_SEED ?? Date.now() % 100_000);
  const rnd = seededRandom(seed);
  const log: string[] = [`seed ${seed}`];
  const sim = await ModbusSimulator.tcp({
    units: [
      { unit: 1, profile: loadProfile('eastron-sdm120') },
      { unit: 2, profile: loadProfile('comwintop-cwt-soil') },
      { unit: 3, profile: loadProfile('xy-md02') },
    ],
  });
  cleanups.push(() => sim.close());
  const id = `dl-gw-${s.name}`;
  const dataDir = join(dir, id);
  const configFile = join(dir, `${id}.yaml`);
  const httpPort = await freePort();
  const writeConfig = (polling: boolean) =>
    writeFileSync(
      configFile,
      [
        `gateway: { id: ${id}, dataDir: ${dataDir}, assumeClockSynced: true }`,
        'buses:',
        `  - { id: cabinet, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 300ms }`,
        'devices:',
        ...[
          ['meter-1', 'eastron-sdm120', 1],
          ['soil-1', 'comwintop-cwt-soil', 2],
          ['climate-1', 'xy-md02', 3],
        ].map(
          ([d, p, u]) =>
            `  - { id: ${d}, profile: ${p}, bus: cabinet, unit: ${u}, interval: 200ms, enabled: ${polling} }`,
        ),
        'storage: { batchMaxDelay: 100ms }',
        // a short confirmation timeout so that the test sees resends within its run
        `sync: { url: ${broker.url}, batchMaxReadings: 40, batchMaxDelay: 200ms, backlogRate: 3000, confirmTimeout: 3s }`,
        `panel: { port: ${httpPort}, host: 127.0.0.1 }`,
        '',
      ].join('\n'),
    );

  const receivers: RunningCli[] = [];
  const started: RunningCli[] = [];
  const receiver = (i: number) => {
    const r = startReceiver(s.db, `recv-${s.name}-${i}`, s.receiverArgs);
    started.push(r);
    return r;
  };
  for (let i = 0; i < s.receivers; i++) receivers.push(receiver(i));
  await Promise.all(receivers.map((r) => r.waitFor('receiver subscribed', 20_000)));
  const store: ReceiverStore = await openReceiverStore(s.db, { readonly: true });
  cleanups.push(() => store.close());

  const outputs: string[] = [];
  const ackLog: string[] = [];
  if (process.env.LANGBIANG_FAULT_DUMP) {
    const mqtt = (await import('mqtt')).default;
    const spy = await mqtt.connectAsync(broker.url, { reconnectPeriod: 200 });
    spy.on('connect', () => spy.subscribe('langbiang/v1/+/ack'));
    await spy.subscribeAsync('langbiang/v1/+/ack');
    spy.on('message', (t, p) => ackLog.push(`${new Date().toISOString()} ${t} ${p.toString()}`));
    cleanups.push(() => spy.endAsync(true));
  }
  const startGateway = () => {
    const g = spawnCli(['start', '--config', configFile]);
    void g.exited.then(() => outputs.push(g.output()));
    return g;
  };
  writeConfig(true);
  let gw = startGateway();
  await waitUntil(async () => (await store.counts()).readings > 0, 30_000, 'the first readings at the city').catch(
    (err) => {
      throw new Error(`${(err as Error).message}\n--- gateway ---\n${gw.output().slice(-3000)}`);
    },
  );

  // The faults, at seeded random moments: 6 gateway SIGKILLs, 3 broker SIGKILLs (no persistence),
  // and one receiver SIGKILLed and started again.
  const plan = [
    'gateway',
    'broker',
    'gateway',
    'receiver',
    'gateway',
    'broker',
    'gateway',
    'gateway',
    'broker',
    'gateway',
  ];
  for (const [i, fault] of plan.entries()) {
    await gw.waitFor('polling started', 30_000);
    await sleep(400 + Math.floor(rnd() * 1600));
    if (fault === 'gateway') {
      await kill9(gw);
      log.push(`${i}: gateway kill -9`);
      gw = startGateway();
    } else if (fault === 'broker') {
      // The first time, the city is slow when the broker dies (its receivers stopped for a few
      // batches): the broker took batches nobody confirmed, and forgets them. Whatever the timing,
      // the gateway must then send them again; the later crashes come at random moments.
      const slowCity = !log.some((l) => l.includes('broker kill -9'));
      if (slowCity) {
        for (const r of receivers) r.child.kill('SIGSTOP');
        await sleep(800);
      }
      await broker.kill();
      log.push(`${i}: broker kill -9${slowCity ? ' (receivers stopped)' : ''}`);
      if (slowCity) for (const r of receivers) r.child.kill('SIGCONT');
      await sleep(200 + Math.floor(rnd() * 800));
      await broker.start();
      log.push(`${i}: broker started empty`);
    } else {
      const victim = receivers[0]!;
      await kill9(victim);
      log.push(`${i}: receiver kill -9`);
      await sleep(500 + Math.floor(rnd() * 1000));
      receivers[0] = receiver(0);
    }
  }
  await sleep(1000);
  await kill9(gw);
  log.push('last gateway kill -9');

  // The same gateway with polling off: nothing new is stored; what the city lacks is sent again.
  writeConfig(false);
  gw = startGateway();
  const held = () => {
    const st = Store.open({ dataDir, readonly: true });
    try {
      return { ...st.stats(), confirmed: st.getCursor(CONFIRMED_CURSOR), epoch: st.epoch };
    } finally {
      st.close();
    }
  };
  await waitUntil(
    async () => {
      const h = held();
      return (await store.counts()).readings >= h.readings && h.confirmed >= h.lastSeq;
    },
    90_000,
    `the city to hold and confirm every reading the gateway stored (${log.join(', ')})`,
  ).catch(async (err) => {
    const seqs = new Set<number>();
    for await (const page of store.readings({ gateway: id })) for (const r of page) seqs.add(r.seq);
    if (process.env.LANGBIANG_FAULT_DUMP) {
      writeFileSync(process.env.LANGBIANG_FAULT_DUMP, outputs.join('\n') + gw.output());
      writeFileSync(`${process.env.LANGBIANG_FAULT_DUMP}.acks`, ackLog.join('\n'));
      writeFileSync(`${process.env.LANGBIANG_FAULT_DUMP}.recv`, [...allReceivers].map((r) => r.output()).join('\n'));
    }
    const missing: number[] = [];
    for (let q = 1; q <= held().lastSeq; q++) if (!seqs.has(q)) missing.push(q);
    throw new Error(
      `${(err as Error).message}\ngateway ${JSON.stringify(held())}; city ${JSON.stringify(await store.counts())}, ` +
        `watermarks ${JSON.stringify(await store.watermarks(id, held().epoch))}; ${missing.length} missing: ` +
        `${JSON.stringify(missingRanges(missing))}\n` +
        `--- gateway sync log ---\n${gw
          .output()
          .split('\n')
          .filter((l) => l.includes('"part":"sync"'))
          .slice(-15)
          .join('\n')}`,
    );
  });
  await sleep(500); // any late duplicate would show now
  gw.child.kill('SIGTERM');
  await gw.exited;

  const h = held();
  const context = log.join(', ');
  expect(h.gaps, context).toBe(0);
  expect(h.readings, context).toBeGreaterThan(500);
  // The resend path was taken: a broker that restarts empty has no session for the gateway.
  const all = outputs.join('\n');
  expect(all, context).toContain('sending again everything the city has not confirmed');

  // The city's export equals the gateway's, line for line: none missing, none twice.
  const atGateway = await runCli(['export', '--data-dir', dataDir]);
  const atCity = await runCli(['export', '--receiver-db', s.db]);
  expect(atGateway.code, atGateway.stderr).toBe(0);
  expect(atCity.code, atCity.stderr).toBe(0);
  const gl = atGateway.stdout.trimEnd().split('\n');
  const cl = atCity.stdout.trimEnd().split('\n');
  expect(cl[0]).toBe(`gateway,${gl[0]}`);
  expect(cl.length - 1, context).toBe(h.readings);
  expect(cl.slice(1), context).toEqual(gl.slice(1).map((l) => `${id},${l}`));

  for (const r of receivers) {
    r.child.kill('SIGTERM');
    await r.exited;
  }
  return started.map((r) => r.output());
}

describe('exactly once to the city with a broker that crashes and forgets (end-to-end acknowledgement)', () => {
  it('two receivers on one shared subscription into PostgreSQL; broker, gateway and a receiver killed with SIGKILL', async () => {
    await runScenario({ name: 'pg', db: await pg.createDatabase('e2e_faults'), receivers: 2 });
  }, 240_000);

  it('one receiver into SQLite on a shared subscription; broker and gateway killed with SIGKILL', async () => {
    // Messages of more than 20 readings (the backlog and resend batches of 40) are committed whole
    // and made rows later, live batches (~15) become rows at once: both paths under the faults,
    // and the test's reader, open throughout, sees what lands after it opened.
    const outputs = await runScenario({
      name: 'sqlite',
      db: join(dir, 'city.db'),
      receivers: 1,
      receiverArgs: ['--land-above', '20', '--stats-interval', '1'],
    });
    const landed = outputs.flatMap((o) => [...o.matchAll(/"telemetryLanded":(\d+)/g)].map((m) => Number(m[1])));
    expect(Math.max(0, ...landed), 'messages the receiver landed whole').toBeGreaterThan(0);
  }, 240_000);
});
