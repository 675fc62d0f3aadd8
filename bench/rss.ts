import { join } from 'node:path';
import { type BenchContext, type BenchResult, round, rssMb, sleep } from './common.js';
import { startProc } from './procs.js';
import { fiveHundredPoints, startShipped } from './shipped.js';

/** flat: the second half of the run grows by less than this (docs/performance.md, "Targets") */
const FLAT_MB_PER_H = 1;
/** a slope is judged only over a run this long; a short run reports it */
const JUDGED_S = 1800;

/**
 * RSS of the gateway as shipped (bench/shipped.ts: `langbiang start`, HTTP on, sync on to a local
 * Mosquitto with a receiver acknowledging, Node-RED off) polling 500 points every 2 s, sampled
 * every second for 30 minutes (20 s quick). The slope of the second half (least squares) says
 * whether it is flat.
 */
export default async function run(ctx: BenchContext): Promise<BenchResult> {
  const seconds = ctx.quick ? 20 : JUDGED_S;
  const intervalS = 2;
  const site = await fiveHundredPoints(join(ctx.scratch, 'site'), intervalS);
  const points = site.points;
  const samples: { t: number; mb: number }[] = [];
  try {
    const gw = await startShipped(join(ctx.scratch, 'shipped'), site.buses);
    try {
      const t0 = performance.now();
      while (performance.now() - t0 < seconds * 1000) {
        if (gw.gateway.child.exitCode !== null)
          throw new Error(`the gateway exited: ${gw.gateway.output().slice(-2000)}`);
        samples.push({ t: (performance.now() - t0) / 1000, mb: rssMb(gw.pid) });
        await sleep(1000);
      }
      const health = (await (await fetch(`http://127.0.0.1:${gw.httpPort}/healthz`)).json()) as {
        sync?: { unconfirmed?: number; backlog?: number };
      };
      const node = await bareNodeRss();
      const start = samples[0]!.mb;
      const peak = Math.max(...samples.map((s) => s.mb));
      const end = samples[samples.length - 1]!.mb;
      const half = samples.slice(Math.floor(samples.length / 2));
      const slope = slopeMbPerHour(half);
      const judged = seconds >= JUDGED_S;
      return {
        keys: {
          rss_mb_start: round(start, 1),
          rss_mb_peak: round(peak, 1),
          rss_mb_end: round(end, 1),
          rss_mb_node_bare: round(node, 1),
          rss_slope_mb_per_h: round(slope, 2),
        },
        rows: [
          {
            metric: `gateway RSS peak, as shipped with sync on (${points} points every ${intervalS} s, ${seconds} s)`,
            ours: round(peak, 1),
            unit: 'MB',
            versus: 'bare node (an idle timer)',
            theirs: round(node, 1),
            ratio: round(peak / node, 2),
            target: '≤ 60 MB',
            met: peak <= 60,
          },
          {
            metric: `gateway RSS slope, second half of ${seconds} s (least squares)`,
            ours: round(slope, 2),
            unit: 'MB/h',
            versus: 'flat',
            theirs: FLAT_MB_PER_H,
            ratio: null,
            target: `< ${FLAT_MB_PER_H} MB/h over ≥ 30 min`,
            met: judged ? slope < FLAT_MB_PER_H : null,
          },
        ],
        details: {
          seconds,
          points,
          intervalS,
          judged,
          sync: health.sync ?? null,
          samples: samples.filter((_, i) => i % 10 === 0).map((s) => [round(s.t, 0), round(s.mb, 1)]),
        },
      };
    } finally {
      await gw.stop();
    }
  } finally {
    await site.stop();
  }
}

/** RSS of a Node process doing nothing, for scale (the floor under any Node program here). */
async function bareNodeRss(): Promise<number> {
  const p = startProc(process.execPath, ['-e', 'setTimeout(() => {}, 3000)']);
  await sleep(1000);
  const mb = rssMb(p.child.pid!);
  await p.kill();
  return mb;
}

function slopeMbPerHour(s: { t: number; mb: number }[]): number {
  if (s.length < 2) return 0;
  const n = s.length;
  const mt = s.reduce((a, x) => a + x.t, 0) / n;
  const mm = s.reduce((a, x) => a + x.mb, 0) / n;
  const num = s.reduce((a, x) => a + (x.t - mt) * (x.mb - mm), 0);
  const den = s.reduce((a, x) => a + (x.t - mt) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 3600;
}
