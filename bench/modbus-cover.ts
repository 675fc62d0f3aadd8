import type { PointDef } from '../gateway/core/point.js';

/**
 * The fewest Modbus read requests that fetch a set of points, found by exhaustive search — the
 * yardstick of the Modbus benchmark, written apart from the planner (drivers/modbus/planner.ts) so
 * the planner is not judged by itself. The rules are the devices' own:
 * - one request reads one function code (coils, discrete inputs, holding, input registers);
 * - it reads a contiguous address range of at most 125 registers or 2000 bits (Modbus
 *   Application Protocol v1.1b3), or the model's smaller limit;
 * - it touches no address that no point occupies (devices answer "illegal data address");
 * - a point comes whole from one request (the halves of a 32-bit value from two requests would be
 *   two different moments).
 * Requests may overlap. The search: the uncovered point with the lowest start address must be
 * inside some request; try every request that contains it (bounds at point starts and ends: a
 * request shrunk to the span of the points it contains reads the same points), recurse,
 * memoised on the set of points covered.
 */

/** registers (or bits) a point occupies, by its type: the Modbus data model, not the planner's helper */
function width(p: PointDef): number {
  if (p.function === 'coil' || p.function === 'discrete') return 1;
  switch (p.type) {
    case 'string':
      return p.length ?? 1;
    case 'u32':
    case 'i32':
    case 'f32':
      return 2;
    case 'f64':
      return 4;
    default:
      return 1;
  }
}

interface Interval {
  start: number;
  end: number;
}

function coverOneFunction(points: Interval[], limit: number): number {
  const n = points.length;
  if (n === 0) return 0;
  const occupied = new Set<number>();
  for (const p of points) for (let a = p.start; a < p.end; a++) occupied.add(a);
  const inside = (s: number, e: number) => {
    for (let a = s; a < e; a++) if (!occupied.has(a)) return false;
    return true;
  };
  const starts = [...new Set(points.map((p) => p.start))].sort((a, b) => a - b);
  const ends = [...new Set(points.map((p) => p.end))].sort((a, b) => a - b);
  const order = points.map((_, i) => i).sort((a, b) => points[a]!.start - points[b]!.start);
  const all = (1n << BigInt(n)) - 1n;
  const memo = new Map<bigint, number>();
  const solve = (covered: bigint): number => {
    if (covered === all) return 0;
    const known = memo.get(covered);
    if (known !== undefined) return known;
    const q = order.find((i) => (covered & (1n << BigInt(i))) === 0n)!;
    const { start: qs, end: qe } = points[q]!;
    let best = Number.POSITIVE_INFINITY;
    for (const s of starts) {
      if (s > qs) break;
      for (const e of ends) {
        if (e < qe || e - s > limit) continue;
        if (!inside(s, e)) continue;
        let next = covered;
        points.forEach((p, i) => {
          if (p.start >= s && p.end <= e) next |= 1n << BigInt(i);
        });
        best = Math.min(best, 1 + solve(next));
      }
    }
    if (!Number.isFinite(best)) throw new Error(`no request can read the point at ${qs} within ${limit}`);
    memo.set(covered, best);
    return best;
  };
  return solve(0n);
}

/** Fewest requests for these points of one unit; maxRegisters is the model's limit, if any. */
export function exhaustiveCover(points: readonly PointDef[], maxRegisters?: number): number {
  let total = 0;
  for (const fn of ['coil', 'discrete', 'holding', 'input'] as const) {
    const bits = fn === 'coil' || fn === 'discrete';
    const limit = bits ? 2000 : Math.min(125, maxRegisters ?? 125);
    const spans = points.filter((p) => p.function === fn).map((p) => ({ start: p.address, end: p.address + width(p) }));
    total += coverOneFunction(spans, limit);
  }
  return total;
}
