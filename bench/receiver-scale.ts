import { cpus } from 'node:os';
import { type BenchContext, type BenchResult, type BenchRow, round, sleep } from './common.js';
import { startLoad } from './load-gen.js';
import { descendants, procStat, startBenchPostgres } from './postgres.js';
import { BIN, type Proc, startMosquitto, startProc } from './procs.js';

/**
 * Receivers that scale out: simulated gateways (load-gen.ts, hundreds of MQTT connections
 * publishing native batches) into one Mosquitto, and 1, 2 and 4 `langbiang receiver` processes —
 * the CLI as shipped — on one shared subscription into one PostgreSQL with durable commits.
 * Measured: readings per second committed (publish start → the last reading accounted for in
 * the receivers' watermarks), readings per second per receiver CPU-second, and each component's
 * CPU use, which says where it saturates. Everything runs on this one machine: the figures are
 * the machine's, not a cluster's.
 */

interface Step {
  receivers: number;
  readings: number;
  seconds: number;
  readingsPerS: number;
  /** readings per CPU-second of the receiver processes together */
  perReceiverCore: number;
  cpu: { receivers: number; broker: number; postgres: number; generator: number };
  busiest: string;
  /** where it saturates, in words */
  limit: string;
}

/**
 * Where a step saturates: the machine's cores, one receiver's core (a receiver handles one message
 * at a time), or neither — then the time goes to waiting, which for a receiver is its commit
 * (PostgreSQL's WAL flush): the cure is more receivers or bigger batches, not faster CPUs.
 */
export function saturation(cpuShare: Record<string, number>, receivers: number, cores: number): string {
  const total = Object.values(cpuShare).reduce((a, b) => a + b, 0);
  if (total >= 0.85 * cores) return `machine CPU (${round(total, 2)} of ${cores} cores busy)`;
  if ((cpuShare.receivers ?? 0) / receivers >= 0.85) return 'receiver CPU (each receiver near one core)';
  if ((cpuShare.postgres ?? 0) >= 0.85) return 'PostgreSQL CPU';
  if ((cpuShare.broker ?? 0) >= 0.85) return 'broker CPU';
  return `commit latency, not CPU (${round(total, 2)} of ${cores} cores busy)`;
}

function cpuOf(pids: number[]): number {
  let s = 0;
  for (const p of pids) s += procStat(p)?.cpuS ?? 0;
  return s;
}

export default async function receiverScale(ctx: BenchContext): Promise<BenchResult> {
  const gateways = ctx.quick ? 40 : 300;
  const batches = ctx.quick ? 5 : 20;
  const perBatch = 100;
  const steps = [1, 2, 4];
  const broker = await startMosquitto(ctx.scratch);
  const pg = await startBenchPostgres(ctx.scratch);
  const results: Step[] = [];
  try {
    for (const n of steps) {
      const db = await pg.createDatabase(`rx_${n}`);
      const prefix = `n${n}`;
      const receivers: Proc[] = [];
      for (let i = 0; i < n; i++) {
        const r = startProc(process.execPath, [
          BIN,
          'receiver',
          '--broker',
          broker.url,
          '--db',
          db,
          '--group',
          `bench-${n}`,
          '--client-id',
          `bench-rx-${n}-${i}`,
          '--session-expiry',
          '5',
          '--stats-interval',
          '0',
        ]);
        receivers.push(r);
      }
      for (const r of receivers) await r.waitFor('receiver subscribed', 30_000);
      const { default: pgmod } = await import('pg');
      const client = new pgmod.Client({ connectionString: db });
      await client.connect();
      const total = gateways * batches * perBatch;
      const rxPids = receivers.map((r) => r.child.pid!);
      const pgPids = pg.pids();
      const before = {
        receivers: cpuOf(rxPids),
        broker: cpuOf([broker.proc.child.pid!]),
        postgres: cpuOf(pgPids),
        generator: process.cpuUsage(),
      };
      const load = await startLoad({
        brokerUrl: broker.url,
        gateways,
        batchesPerGateway: batches,
        readingsPerBatch: perBatch,
        prefix,
      });
      const deadline = Date.now() + (ctx.quick ? 120_000 : 600_000);
      let committed = 0;
      while (committed < total) {
        if (Date.now() > deadline)
          throw new Error(`${n} receivers: only ${committed} of ${total} readings committed in time`);
        await sleep(50);
        const r = await client.query<{ s: string | null }>(
          "SELECT sum(upto) AS s FROM langbiang_watermarks WHERE stream = 'readings'",
        );
        committed = Number(r.rows[0]?.s ?? 0);
      }
      const seconds = (Date.now() - load.startedAt) / 1000;
      const gen = process.cpuUsage(before.generator);
      const cpu = {
        receivers: cpuOf(rxPids) - before.receivers,
        broker: cpuOf([broker.proc.child.pid!]) - before.broker,
        postgres: cpuOf(descendants(pg.proc.child.pid!)) - before.postgres,
        generator: (gen.user + gen.system) / 1e6,
      };
      const rows = await client.query<{ c: string }>('SELECT count(*) AS c FROM langbiang_readings');
      if (Number(rows.rows[0]!.c) !== total)
        throw new Error(`${n} receivers: ${rows.rows[0]!.c} rows, expected ${total}`);
      await client.end();
      await load.done;
      await load.close();
      for (const r of receivers) await r.kill();
      const busiest = Object.entries(cpu).sort((a, b) => b[1] - a[1])[0]![0];
      const share = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / seconds]));
      results.push({
        receivers: n,
        readings: total,
        seconds: round(seconds, 2),
        readingsPerS: Math.round(total / seconds),
        perReceiverCore: Math.round(total / Math.max(cpu.receivers, 0.01)),
        cpu: {
          receivers: round(cpu.receivers / seconds, 2),
          broker: round(cpu.broker / seconds, 2),
          postgres: round(cpu.postgres / seconds, 2),
          generator: round(cpu.generator / seconds, 2),
        },
        busiest,
        limit: saturation(share, n, cpus().length),
      });
      process.stderr.write(`receiver-scale: ${n} receivers ${JSON.stringify(results[results.length - 1])}\n`);
    }
  } finally {
    await pg.proc.kill();
    await broker.proc.kill();
  }
  const one = results[0]!;
  const keys: Record<string, number> = {};
  const rows: BenchRow[] = [];
  for (const s of results) {
    keys[`receivers_${s.receivers}_readings_per_s`] = s.readingsPerS;
    rows.push({
      metric: `receivers ×${s.receivers} → PostgreSQL (${gateways} gateways)`,
      ours: s.readingsPerS,
      unit: 'readings/s',
      versus: '1 receiver',
      theirs: one.readingsPerS,
      ratio: round(s.readingsPerS / one.readingsPerS, 2),
      target: 'grows until a core is saturated',
      met: null,
    });
  }
  keys.receivers_readings_per_receiver_core = one.perReceiverCore;
  rows.push({
    metric: 'readings per receiver CPU-second (1 receiver)',
    ours: one.perReceiverCore,
    unit: 'readings/s/core',
    versus: '—',
    theirs: null,
    ratio: null,
    target: 'measured',
    met: null,
  });
  return {
    keys,
    rows,
    details: { cores: cpus().length, gateways, readingsPerBatch: perBatch, batchesPerGateway: batches, steps: results },
  };
}
