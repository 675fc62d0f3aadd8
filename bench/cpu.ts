import { join } from 'node:path';
import { type BenchContext, type BenchResult, round, sleep } from './common.js';
import { cpuSeconds } from './procs.js';
import { fiveHundredPoints, startShipped } from './shipped.js';

/**
 * CPU of the gateway as shipped (bench/shipped.ts: HTTP on, sync on with a receiver
 * acknowledging, Node-RED off) polling 500 points every 2 s, at steady state: user + system
 * seconds of the gateway process over a window after a warm-up, as CPU seconds per hour. Twice:
 * with the launcher's V8 flags (`--turbo-filter=hot* --no-maglev --optimize-for-size`, the semi-space cap)
 * and with V8's defaults (the same CLI imported by a bare node), so the flags' cost is a number.
 */
async function measure(dir: string, flags: 'shipped' | 'default', warmupS: number, windowS: number) {
  const site = await fiveHundredPoints(join(dir, 'site'));
  try {
    const gw = await startShipped(join(dir, 'shipped'), site.buses, flags);
    try {
      await sleep(warmupS * 1000);
      const c0 = cpuSeconds(gw.pid);
      const t0 = performance.now();
      await sleep(windowS * 1000);
      const used = cpuSeconds(gw.pid) - c0;
      const s = (performance.now() - t0) / 1000;
      if (gw.gateway.child.exitCode !== null)
        throw new Error(`the gateway exited: ${gw.gateway.output().slice(-2000)}`);
      return { cpuS: used, seconds: s, perHour: (used / s) * 3600 };
    } finally {
      await gw.stop();
    }
  } finally {
    await site.stop();
  }
}

export default async function run(ctx: BenchContext): Promise<BenchResult> {
  const warmupS = ctx.quick ? 3 : 60;
  const windowS = ctx.quick ? 5 : 300;
  const shipped = await measure(join(ctx.scratch, 'shipped'), 'shipped', warmupS, windowS);
  const defaults = await measure(join(ctx.scratch, 'default'), 'default', warmupS, windowS);
  const ratio = shipped.perHour / defaults.perHour;
  return {
    keys: {
      cpu_s_per_hour_500_points: round(shipped.perHour, 1),
      cpu_s_per_hour_500_points_default_flags: round(defaults.perHour, 1),
    },
    rows: [
      {
        metric: `gateway CPU at steady state, as shipped with sync on (500 points every 2 s, ${windowS} s after ${warmupS} s)`,
        ours: round(shipped.perHour, 1),
        unit: 'CPU s/h',
        versus: "the same gateway with V8's default flags",
        theirs: round(defaults.perHour, 1),
        ratio: round(ratio, 2),
        target: 'reported',
        met: null,
      },
    ],
    details: {
      warmupS,
      windowS,
      shipped: { cpuS: round(shipped.cpuS, 2), seconds: round(shipped.seconds, 1) },
      defaultFlags: { cpuS: round(defaults.cpuS, 2), seconds: round(defaults.seconds, 1) },
      shareOfOneCore: round(shipped.perHour / 3600, 4),
      note: 'user + system time of the gateway process only (/proc/PID/stat); the simulators, broker and receiver run in their own processes on the same cores',
    },
  };
}
