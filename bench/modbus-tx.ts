import { ModbusBus } from '../drivers/modbus/bus.js';
import { ModbusSimulator } from '../hardware/simulators/index.js';
import { type BenchContext, type BenchResult, round } from './common.js';
import { realisticSites } from './dataset.js';
import { exhaustiveCover } from './modbus-cover.js';

/**
 * Transactions per poll cycle of the greenhouse and cabinet Modbus devices, counted where they
 * land — at the simulator — through the real ModbusBus (planner + queue + TCP), against the
 * fewest requests that can read the same points (an exhaustive search in the benchmark, not the
 * planner) and against one read per point.
 */
export default async function run(ctx: BenchContext): Promise<BenchResult> {
  const cycles = ctx.quick ? 2 : 20;
  const devices = realisticSites()
    .slice(0, 2)
    .flatMap((s) => s.devices)
    .filter((d) => d.profile.kind === 'modbus')
    .map((d, i) => ({ ...d, unit: i + 1 }));
  const sim = await ModbusSimulator.tcp({
    units: devices.map((d) => ({ unit: d.unit, profile: d.profile, seed: d.unit })),
  });
  const bus = ModbusBus.tcp({ id: 'bench', host: '127.0.0.1', port: sim.port!, timeoutMs: 2000 });
  try {
    await bus.open();
    let bad = 0;
    for (let c = 0; c < cycles; c++) {
      for (const d of devices) {
        const values = await bus.readPoints({ id: d.id, profile: d.profile, unit: d.unit }, d.points);
        bad += values.filter((v) => v.quality !== 'good').length;
      }
    }
    if (bad > 0)
      throw new Error(`${bad} readings came back without good quality: the count would not be a clean cycle`);
    const requests = devices.reduce((n, d) => n + sim.stats(d.unit).requests, 0);
    const illegal = devices.reduce((n, d) => n + sim.stats(d.unit).illegalAddressRequests, 0);
    const perCycle = requests / cycles;
    // the yardstick: an exhaustive search written apart from the planner (bench/modbus-cover.ts)
    const optimalOf = (d: (typeof devices)[number]) => exhaustiveCover(d.points, d.profile.maxReadRegisters);
    const optimal = devices.reduce((n, d) => n + optimalOf(d), 0);
    const naive = devices.reduce((n, d) => n + d.points.length, 0);
    const points = devices.reduce((n, d) => n + d.points.length, 0);
    return {
      keys: {
        modbus_tx_per_cycle: round(perCycle, 2),
        modbus_tx_ratio_vs_optimal: round(perCycle / optimal, 3),
        modbus_tx_ratio_vs_naive: round(perCycle / naive, 3),
      },
      rows: [
        {
          metric: `Modbus transactions per poll cycle (${devices.length} devices, ${points} points)`,
          ours: round(perCycle, 2),
          unit: 'tx',
          versus: 'fewest requests, exhaustive search in the bench (not the planner)',
          theirs: optimal,
          ratio: round(perCycle / optimal, 3),
          target: '= 1×',
          met: perCycle <= optimal,
        },
        {
          metric: 'Modbus transactions per poll cycle',
          ours: round(perCycle, 2),
          unit: 'tx',
          versus: 'one read per point',
          theirs: naive,
          ratio: round(perCycle / naive, 3),
          target: '(comparison)',
          met: null,
        },
      ],
      details: {
        cycles,
        illegalAddressRequests: illegal,
        devices: devices.map((d) => ({
          device: d.id,
          profile: d.profile.name,
          points: d.points.length,
          txPerCycle: sim.stats(d.unit).requests / cycles,
          optimal: optimalOf(d),
        })),
      },
    };
  } finally {
    await bus.close();
    await sim.close();
  }
}
