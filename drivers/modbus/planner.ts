/**
 * Poll planner: turns the due points of one unit into the fewest Modbus block reads.
 *
 * Rules, because real devices enforce them:
 * - a block never includes an address no listed point covers (most devices answer "illegal data
 *   address" to the whole request when it touches a hole), unless the caller's `readable` says
 *   the gap is safe to read;
 * - a block never exceeds the protocol maximum (125 registers, 2000 bits) or the model's own
 *   smaller limit (profile maxReadRegisters);
 * - a multi-register point is never split across two blocks (its halves would come from two
 *   different moments);
 * - an address the unit has refused (`refused`: it answered "illegal data address" for it) is a
 *   hole too, whatever the profile says: points on it are left out and no block bridges it.
 */
import { LangbiangError } from '../../gateway/core/errors.js';
import { type PointDef, pointWidth, type RegisterFunction } from '../../gateway/core/point.js';
import type { WireData } from './codec.js';

/** Modbus Application Protocol v1.1b3: read holding/input registers takes at most 125, read coils/discrete inputs at most 2000. */
export const MAX_READ_REGISTERS = 125;
export const MAX_READ_BITS = 2000;

export interface ReadBlock {
  function: RegisterFunction;
  address: number;
  count: number;
  points: PointDef[];
}

export interface PlanOptions {
  /** largest register block (holding/input); default and ceiling 125 */
  maxRegisters?: number;
  /** largest bit block (coil/discrete); default and ceiling 2000 */
  maxBits?: number;
  /** addresses known to be readable although no listed point covers them; lets a block bridge a gap */
  readable?: (fn: RegisterFunction, address: number) => boolean;
  /** addresses this unit refuses (learnt from exception 2): never read, never bridged */
  refused?: (fn: RegisterFunction, address: number) => boolean;
}

const FUNCTION_ORDER: RegisterFunction[] = ['coil', 'discrete', 'holding', 'input'];

function limitFor(fn: RegisterFunction, opts: PlanOptions): number {
  const bits = fn === 'coil' || fn === 'discrete';
  const ceiling = bits ? MAX_READ_BITS : MAX_READ_REGISTERS;
  const asked = bits ? opts.maxBits : opts.maxRegisters;
  if (asked === undefined) return ceiling;
  if (!Number.isInteger(asked) || asked < 1) {
    throw new LangbiangError('PROFILE_INVALID', `read block limit must be a positive integer, got ${asked}`);
  }
  return Math.min(asked, ceiling);
}

interface Span {
  start: number;
  /** exclusive */
  end: number;
  points: PointDef[];
}

/** Points that share at least one address: they are read together when they fit. */
function clusters(sorted: readonly PointDef[]): Span[] {
  const out: Span[] = [];
  for (const p of sorted) {
    const end = p.address + pointWidth(p);
    const last = out[out.length - 1];
    if (last && p.address < last.end) {
      last.end = Math.max(last.end, end);
      last.points.push(p);
    } else {
      out.push({ start: p.address, end, points: [p] });
    }
  }
  return out;
}

/** A cluster wider than the limit (overlapping points): split it by start address. */
function splitCluster(fn: RegisterFunction, c: Span, limit: number): Span[] {
  const out: Span[] = [];
  for (const p of c.points) {
    const end = p.address + pointWidth(p);
    if (end - p.address > limit) {
      throw new LangbiangError(
        'PROFILE_INVALID',
        `point "${p.name}" (${fn} ${p.address}) is ${end - p.address} wide, more than one read may fetch (${limit})`,
        { point: p.name },
      );
    }
    const last = out[out.length - 1];
    if (last && Math.max(last.end, end) - last.start <= limit) {
      last.end = Math.max(last.end, end);
      last.points.push(p);
    } else {
      out.push({ start: p.address, end, points: [p] });
    }
  }
  return out;
}

function gapReadable(fn: RegisterFunction, from: number, to: number, opts: PlanOptions): boolean {
  if (from >= to) return true;
  const { readable, refused } = opts;
  if (!readable) return false;
  for (let a = from; a < to; a++) if (!readable(fn, a) || refused?.(fn, a)) return false;
  return true;
}

function touchesRefused(p: PointDef, refused: NonNullable<PlanOptions['refused']>): boolean {
  for (let a = p.address; a < p.address + pointWidth(p); a++) if (refused(p.function, a)) return true;
  return false;
}

function planFunction(fn: RegisterFunction, points: PointDef[], opts: PlanOptions): ReadBlock[] {
  const limit = limitFor(fn, opts);
  const sorted = [...points].sort(
    (a, b) => a.address - b.address || pointWidth(a) - pointWidth(b) || (a.bit ?? 0) - (b.bit ?? 0),
  );
  const spans = clusters(sorted).flatMap((c) => (c.end - c.start > limit ? splitCluster(fn, c, limit) : [c]));

  // Greedy "extend while it fits" over disjoint spans sorted by address is optimal: any cover's
  // k-th block cannot end further right than the greedy's k-th block.
  const blocks: ReadBlock[] = [];
  let current: Span | undefined;
  for (const s of spans) {
    if (current && s.end - current.start <= limit && gapReadable(fn, current.end, s.start, opts)) {
      current.end = Math.max(current.end, s.end);
      current.points.push(...s.points);
      continue;
    }
    if (current)
      blocks.push({ function: fn, address: current.start, count: current.end - current.start, points: current.points });
    current = { start: s.start, end: s.end, points: [...s.points] };
  }
  if (current)
    blocks.push({ function: fn, address: current.start, count: current.end - current.start, points: current.points });
  return blocks;
}

/**
 * The fewest block reads that fetch every given point of one unit, grouped by function
 * (coil, discrete, holding, input) and in address order within each.
 */
export function planReads(points: readonly PointDef[], opts: PlanOptions = {}): ReadBlock[] {
  const byFunction = new Map<RegisterFunction, PointDef[]>();
  const refused = opts.refused;
  for (const p of points) {
    if (refused && touchesRefused(p, refused)) continue;
    const list = byFunction.get(p.function);
    if (list) list.push(p);
    else byFunction.set(p.function, [p]);
  }
  return FUNCTION_ORDER.flatMap((fn) => {
    const list = byFunction.get(fn);
    return list ? planFunction(fn, list, opts) : [];
  });
}

/** Number of transactions of the optimal plan: what one poll cycle of these points should cost. */
export function optimalBlockCount(points: readonly PointDef[], opts: PlanOptions = {}): number {
  return planReads(points, opts).length;
}

/** What a naive poller costs: one request per point. */
export function naiveReadCount(points: readonly PointDef[]): number {
  return points.length;
}

/** The point's registers (or bits) out of a block's response, ready for decodePoint. */
export function sliceForPoint(block: ReadBlock, data: WireData, point: PointDef): number[] {
  const width = pointWidth(point);
  const from = point.address - block.address;
  if (point.function !== block.function || from < 0 || from + width > block.count) {
    throw new LangbiangError(
      'DECODE_FAILED',
      `point "${point.name}" (${point.function} ${point.address}) is not inside the block ${block.function} ${block.address}+${block.count}`,
      { point: point.name },
    );
  }
  // bit reads come back padded to whole bytes, so only a short response is an error
  if (data.length < from + width) {
    throw new LangbiangError(
      'DECODE_FAILED',
      `response for ${block.function} ${block.address}+${block.count} has ${data.length} values, point "${point.name}" needs ${from + width}`,
      { point: point.name },
    );
  }
  return data.slice(from, from + width).map((d) => (typeof d === 'boolean' ? (d ? 1 : 0) : d));
}
