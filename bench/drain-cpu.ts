import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from './common.js';
import { fillWithHistory, type ShippedDrainOptions, shippedConfirmedDrain } from './drain.js';
import { startMosquitto } from './procs.js';

/**
 * `node dist/bench/drain-cpu.js [--n=1000000] [--runs=3] [--flags=shipped|opt] [--prof=DIR]`:
 * the end-to-end drain of drain.ts alone, repeated on copies of one filled store, printing CPU
 * seconds per million readings for the gateway, the receiver and the broker. A tool for working on
 * the drain on a shared machine (the wall clock is noisy there, CPU seconds much less); `--prof`
 * writes V8 CPU profiles of both processes (they stop cleanly after each run).
 */
function arg(name: string, fallback: string): string {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
}

async function main(): Promise<void> {
  const n = Number(arg('n', '1000000'));
  const runs = Number(arg('runs', '3'));
  const flags = arg('flags', 'shipped') as 'shipped' | 'opt';
  const prof = arg('prof', '');
  const sc = scratchDir('drain-cpu');
  const scratch = sc.dir;
  const filled = join(scratch, 'filled');
  await fillWithHistory(filled, n);
  const broker = await startMosquitto(scratch);
  try {
    for (let i = 0; i < runs; i++) {
      const dir = join(scratch, `run-${i}`);
      mkdirSync(dir, { recursive: true });
      cpSync(filled, join(dir, 'data'), { recursive: true });
      const o: ShippedDrainOptions = { gatewayFlags: flags, dataDir: join(dir, 'data') };
      if (prof) {
        o.gatewayNodeArgs = ['--cpu-prof', `--cpu-prof-dir=${join(prof, 'gateway')}`];
        o.receiverNodeArgs = ['--cpu-prof', `--cpu-prof-dir=${join(prof, 'receiver')}`];
        o.graceful = true;
      }
      const r = await shippedConfirmedDrain(dir, broker, n, o);
      const k = 1e6 / r.n;
      console.log(
        JSON.stringify({
          run: i + 1,
          flags,
          readings: r.n,
          ms: Math.round(r.ms),
          perS: Math.round((r.n / r.ms) * 1000),
          rowsMs: Math.round(r.rowsMs),
          rowsPerS: Math.round((r.n / r.rowsMs) * 1000),
          receiverCpuSPerMillionToRows: +(r.receiverCpuToRows * k).toFixed(2),
          resends: r.resends,
          cpuSPerMillion: {
            gateway: +(r.cpu.gateway * k).toFixed(2),
            receiver: +(r.cpu.receiver * k).toFixed(2),
            broker: +(r.cpu.broker * k).toFixed(2),
          },
        }),
      );
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    await broker.proc.kill();
    sc.remove();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
