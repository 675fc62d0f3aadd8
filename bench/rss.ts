import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type BenchContext, type BenchResult, round, rssMb, sleep } from './common.js';
import { type BenchBus, BIN, freePort, ptyPair, startProc, startSimulators, writeConfigs } from './procs.js';

/**
 * RSS of `langbiang start --config` (HTTP on, Node-RED off, no sync) polling 500 points: 20 soil
 * probes on an RS-485 line (a socat PTY) and 10 three-phase meters behind two Modbus TCP
 * gateways, every 2 s. The simulators run in their own process, so only the gateway is sampled.
 */
export default async function run(ctx: BenchContext): Promise<BenchResult> {
  const seconds = ctx.quick ? 20 : 300;
  const intervalS = 2;
  const dataDir = join(ctx.scratch, 'data');
  mkdirSync(dataDir, { recursive: true });
  const pty = await ptyPair(ctx.scratch);
  const buses: BenchBus[] = [
    {
      id: 'rs485-soil',
      pty: { a: pty.a, b: pty.b },
      devices: Array.from({ length: 20 }, (_, i) => ({
        id: `soil-${i + 1}`,
        profile: 'comwintop-cwt-soil',
        unit: i + 1,
        interval: `${intervalS}s`,
      })),
    },
    ...[0, 1].map((g) => ({
      id: `meters-${g + 1}`,
      tcpPort: 0,
      devices: Array.from({ length: 5 }, (_, i) => ({
        id: `meter-${g * 5 + i + 1}`,
        profile: 'eastron-sdm630',
        unit: i + 1,
        interval: `${intervalS}s`,
      })),
    })),
  ];
  for (const b of buses) if (b.tcpPort === 0) b.tcpPort = await freePort();
  const points = 20 * 7 + 10 * 36;
  const cfg = writeConfigs(ctx.scratch, dataDir, await freePort(), buses);
  const sim = await startSimulators(cfg.simulator);
  const gw = startProc(process.execPath, [BIN, 'start', '--config', cfg.gateway]);
  const samples: { t: number; mb: number }[] = [];
  try {
    await gw.waitFor('http listening', 30_000);
    const pid = gw.child.pid!;
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      if (gw.child.exitCode !== null) throw new Error(`the gateway exited: ${gw.output().slice(-2000)}`);
      samples.push({ t: (performance.now() - t0) / 1000, mb: rssMb(pid) });
      await sleep(1000);
    }
    const readings = /"readings":(\d+)/g;
    let stored = 0;
    for (const m of gw.output().matchAll(readings)) stored = Number(m[1]);
    const node = await bareNodeRss();
    const start = samples[0]!.mb;
    const peak = Math.max(...samples.map((s) => s.mb));
    const end = samples[samples.length - 1]!.mb;
    const half = samples.slice(Math.floor(samples.length / 2));
    const slope = slopeMbPerHour(half);
    return {
      keys: {
        rss_mb_start: round(start, 1),
        rss_mb_peak: round(peak, 1),
        rss_mb_end: round(end, 1),
        rss_mb_node_bare: round(node, 1),
      },
      rows: [
        {
          metric: `gateway RSS peak (${points} points every ${intervalS} s, ${seconds} s)`,
          ours: round(peak, 1),
          unit: 'MB',
          versus: 'bare node (an idle timer)',
          theirs: round(node, 1),
          ratio: round(peak / node, 2),
          target: '≤ 64 MB',
          met: peak <= 64,
        },
        {
          metric: 'gateway RSS start → end',
          ours: round(end, 1),
          unit: 'MB',
          versus: 'RSS at start',
          theirs: round(start, 1),
          ratio: round(end / start, 2),
          target: 'flat',
          met: null,
        },
      ],
      details: {
        seconds,
        points,
        intervalS,
        readingsStoredAtLastSummary: stored,
        slopeMbPerHourSecondHalf: round(slope, 2),
        samples: samples.filter((_, i) => i % 10 === 0).map((s) => [round(s.t, 0), round(s.mb, 1)]),
      },
    };
  } finally {
    await gw.kill();
    await sim.kill();
    await pty.proc.kill();
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
