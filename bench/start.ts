import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { STORE_FILE } from '../gateway/store/index.js';
import { type BenchContext, type BenchResult, round, sleep } from './common.js';
import { BIN, freePort, startProc, startSimulators, writeConfigs } from './procs.js';

/** Time from spawn to the first COMMITTED reading, seen by a second connection polling the file. */
async function once(dir: string, config: string, dataDir: string): Promise<number> {
  const file = join(dataDir, STORE_FILE);
  const t0 = performance.now();
  const gw = startProc(process.execPath, [BIN, 'start', '--config', config]);
  let db: Database.Database | null = null;
  try {
    for (;;) {
      if (gw.child.exitCode !== null) throw new Error(`the gateway exited: ${gw.output().slice(-2000)}`);
      if (performance.now() - t0 > 30_000)
        throw new Error(`no committed reading within 30 s: ${gw.output().slice(-2000)}`);
      try {
        if (!db && existsSync(file)) db = new Database(file, { readonly: true, fileMustExist: true });
        const seq = db ? (db.prepare('SELECT max(seq) FROM batches').pluck().get() as number | null) : null;
        if (seq) return performance.now() - t0;
      } catch {
        // not created or not migrated yet: the next poll will see it
        db?.close();
        db = null;
      }
      await sleep(5);
    }
  } finally {
    db?.close();
    await gw.kill();
    void dir;
  }
}

export default async function run(ctx: BenchContext): Promise<BenchResult> {
  const runs = ctx.quick ? 1 : 5;
  const tcpPort = await freePort();
  const devices = [
    { id: 'soil-a1', profile: 'comwintop-cwt-soil', unit: 1, interval: '30s' },
    { id: 'soil-a2', profile: 'comwintop-cwt-soil', unit: 2, interval: '30s' },
    { id: 'climate-1', profile: 'xy-md02', unit: 3, interval: '1m', points: ['temperature', 'humidity'] },
    { id: 'valves', profile: 'waveshare-modbus-rtu-relay-8ch', unit: 4, interval: '10s' },
  ];
  const times: number[] = [];
  const sims = writeConfigs(ctx.scratch, join(ctx.scratch, 'unused'), 8080, [{ id: 'field', tcpPort, devices }]);
  const sim = await startSimulators(sims.simulator);
  try {
    for (let i = 0; i < runs; i++) {
      const dir = join(ctx.scratch, `run-${i}`);
      mkdirSync(dir, { recursive: true });
      const dataDir = join(dir, 'data');
      const cfg = writeConfigs(dir, dataDir, await freePort(), [{ id: 'field', tcpPort, devices }]);
      times.push(await once(dir, cfg.gateway, dataDir));
    }
  } finally {
    await sim.kill();
  }
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const node = await nodeStart(runs);
  return {
    keys: { start_to_first_reading_ms: Math.round(median), node_start_ms: Math.round(node) },
    rows: [
      {
        metric: 'start to first committed reading (core, HTTP on)',
        ours: Math.round(median),
        unit: 'ms',
        versus: 'bare `node -e 0` start',
        theirs: Math.round(node),
        ratio: round(median / node, 1),
        target: '≤ 1500 ms',
        met: median <= 1500,
      },
    ],
    details: { runs: times.map((t) => Math.round(t)) },
  };
}

/** What starting Node itself costs here, for scale. */
async function nodeStart(runs: number): Promise<number> {
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const p = startProc(process.execPath, ['-e', '0']);
    await new Promise<void>((r) => p.child.once('exit', () => r()));
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)]!;
}
