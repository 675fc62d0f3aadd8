import { describe, expect, it } from 'vitest';
import { decodePoint } from '../../drivers/modbus/codec.js';
import {
  naiveReadCount,
  optimalBlockCount,
  planReads,
  type ReadBlock,
  sliceForPoint,
} from '../../drivers/modbus/planner.js';
import { LangbiangError } from '../../gateway/core/errors.js';
import { type PointDef, pointWidth, type RegisterFunction, type ValueType } from '../../gateway/core/point.js';
import { loadProfile, loadProfiles } from '../../hardware/profiles.js';
import { seededRandom } from '../helpers/seeded-random.js';

function pt(
  name: string,
  fn: RegisterFunction,
  address: number,
  type: ValueType = 'u16',
  over: Partial<PointDef> = {},
): PointDef {
  return {
    name,
    function: fn,
    address,
    type,
    byteOrder: 'big',
    wordOrder: 'big',
    scale: 1,
    offset: 0,
    writable: false,
    ...over,
  };
}

const summary = (blocks: ReadBlock[]) => blocks.map((b) => `${b.function} ${b.address}+${b.count}`);

/** The invariants every plan must keep, whatever the input. */
function assertSoundPlan(points: readonly PointDef[], blocks: ReadBlock[], maxRegisters = 125, maxBits = 2000): void {
  const planned = blocks.flatMap((b) => b.points);
  expect(planned).toHaveLength(points.length);
  expect(new Set(planned)).toEqual(new Set(points));
  for (const b of blocks) {
    const bits = b.function === 'coil' || b.function === 'discrete';
    expect(b.count).toBeLessThanOrEqual(bits ? maxBits : maxRegisters);
    expect(b.count).toBeGreaterThan(0);
    for (const p of b.points) {
      // a point is whole inside its block: never split across two reads
      expect(p.function).toBe(b.function);
      expect(p.address).toBeGreaterThanOrEqual(b.address);
      expect(p.address + pointWidth(p)).toBeLessThanOrEqual(b.address + b.count);
    }
    // never read a hole: every address of the block belongs to a listed point
    for (let a = b.address; a < b.address + b.count; a++) {
      const covered = points.some((p) => p.function === b.function && p.address <= a && a < p.address + pointWidth(p));
      expect(covered, `${b.function} ${a} is read but no point lists it`).toBe(true);
    }
  }
}

/** Reference optimum for disjoint points: dynamic programming over the address-sorted points. */
function bruteForceOptimum(points: PointDef[], max: number): number {
  const sorted = [...points].sort((a, b) => a.address - b.address);
  const best: number[] = [0];
  for (let i = 1; i <= sorted.length; i++) {
    best[i] = Number.POSITIVE_INFINITY;
    for (let j = i - 1; j >= 0; j--) {
      const first = sorted[j] as PointDef;
      const last = sorted[i - 1] as PointDef;
      if (last.address + pointWidth(last) - first.address > max) break;
      if (j < i - 1) {
        const next = sorted[j + 1] as PointDef;
        if (first.address + pointWidth(first) !== next.address) break; // a hole between j and j+1
      }
      best[i] = Math.min(best[i] as number, (best[j] as number) + 1);
    }
  }
  return best[sorted.length] as number;
}

describe('shipped profiles with holes', () => {
  it('Eastron SDM120: one read per value group, nothing in between', () => {
    const p = loadProfile('eastron-sdm120');
    const blocks = planReads(p.points, { maxRegisters: p.maxReadRegisters });
    expect(summary(blocks)).toEqual([
      'input 0+2',
      'input 6+2',
      'input 12+2',
      'input 18+2',
      'input 24+2',
      'input 30+2',
      'input 36+2',
      'input 70+10',
      'input 342+4',
    ]);
    expect(blocks[7]?.points.map((x) => x.name)).toEqual([
      'frequency',
      'import_energy',
      'export_energy',
      'import_reactive_energy',
      'export_reactive_energy',
    ]);
    assertSoundPlan(p.points, blocks, p.maxReadRegisters);
  });

  it('JXCT JXBS-3001: four reads around the holes', () => {
    const p = loadProfile('jxct-jxbs-3001');
    const blocks = planReads(p.points);
    expect(summary(blocks)).toEqual(['holding 6+1', 'holding 18+2', 'holding 21+1', 'holding 30+3']);
    expect(blocks.map((b) => b.points.map((x) => x.name))).toEqual([
      ['ph'],
      ['moisture', 'temperature'],
      ['ec'],
      ['nitrogen', 'phosphorus', 'potassium'],
    ]);
    assertSoundPlan(p.points, blocks);
  });

  it('CWT soil probe: its contiguous map is one read', () => {
    const p = loadProfile('comwintop-cwt-soil');
    expect(summary(planReads(p.points))).toEqual(['holding 0+7']);
  });

  it('only the due points are planned (a subset of the SDM120)', () => {
    const p = loadProfile('eastron-sdm120');
    const due = p.points.filter((x) => ['voltage', 'current', 'frequency', 'total_energy'].includes(x.name));
    expect(summary(planReads(due))).toEqual(['input 0+2', 'input 6+2', 'input 70+2', 'input 342+2']);
  });

  it('every shipped Modbus profile plans soundly within its own block limit', () => {
    for (const p of loadProfiles().values()) {
      if (p.kind !== 'modbus') continue;
      const blocks = planReads(p.points, { maxRegisters: p.maxReadRegisters });
      assertSoundPlan(p.points, blocks, p.maxReadRegisters);
      expect(blocks.length).toBeLessThanOrEqual(naiveReadCount(p.points));
    }
  });

  it('the SDM630 per-phase block respects the 60-register limit of the profile', () => {
    const p = loadProfile('eastron-sdm630');
    const blocks = planReads(p.points, { maxRegisters: p.maxReadRegisters });
    expect(summary(blocks).slice(0, 2)).toEqual(['input 0+36', 'input 42+2']);
    expect(summary(planReads(p.points, { maxRegisters: 10 })).slice(0, 4)).toEqual([
      'input 0+10',
      'input 10+10',
      'input 20+10',
      'input 30+6',
    ]);
  });
});

describe('block limits', () => {
  it('300 contiguous registers split into 125 + 125 + 50', () => {
    const points = Array.from({ length: 300 }, (_, i) => pt(`r${i}`, 'holding', i));
    const blocks = planReads(points);
    expect(summary(blocks)).toEqual(['holding 0+125', 'holding 125+125', 'holding 250+50']);
    assertSoundPlan(points, blocks);
  });

  it('a smaller model limit is respected', () => {
    const points = Array.from({ length: 300 }, (_, i) => pt(`r${i}`, 'holding', i));
    const blocks = planReads(points, { maxRegisters: 60 });
    expect(blocks.map((b) => b.count)).toEqual([60, 60, 60, 60, 60]);
  });

  it('limits above the protocol maximum are capped at 125', () => {
    const points = Array.from({ length: 200 }, (_, i) => pt(`r${i}`, 'input', i));
    expect(planReads(points, { maxRegisters: 500 }).map((b) => b.count)).toEqual([125, 75]);
  });

  it('32-bit values are never split: a 125 limit gives blocks of 124', () => {
    const points = Array.from({ length: 100 }, (_, i) => pt(`f${i}`, 'input', i * 2, 'f32'));
    const blocks = planReads(points);
    expect(blocks.map((b) => b.count)).toEqual([124, 76]);
    assertSoundPlan(points, blocks);
  });

  it('2500 coils split into 2000 + 500', () => {
    const points = Array.from({ length: 2500 }, (_, i) => pt(`c${i}`, 'coil', i, 'bit'));
    expect(summary(planReads(points))).toEqual(['coil 0+2000', 'coil 2000+500']);
    expect(planReads(points, { maxBits: 800 }).map((b) => b.count)).toEqual([800, 800, 800, 100]);
  });

  it('a point wider than the limit is a profile error, not a silent split', () => {
    expect(() => planReads([pt('v', 'input', 0, 'f32')], { maxRegisters: 1 })).toThrow(LangbiangError);
    expect(() => planReads([pt('v', 'input', 0)], { maxRegisters: 0 })).toThrow(/positive integer/);
  });
});

describe('merging rules', () => {
  it('functions are planned separately even at the same addresses', () => {
    const points = [
      pt('a', 'holding', 0),
      pt('b', 'input', 0),
      pt('c', 'holding', 1),
      pt('d', 'coil', 0, 'bit'),
      pt('e', 'discrete', 1, 'bit'),
    ];
    expect(summary(planReads(points))).toEqual(['coil 0+1', 'discrete 1+1', 'holding 0+2', 'input 0+1']);
  });

  it('a one-register hole splits the block', () => {
    expect(summary(planReads([pt('a', 'holding', 0), pt('b', 'holding', 2)]))).toEqual(['holding 0+1', 'holding 2+1']);
  });

  it('unsorted input, bit fields sharing a register and overlapping views read once', () => {
    const points = [
      pt('low_word', 'holding', 11),
      pt('alarm', 'holding', 12, 'bit', { bit: 3 }),
      pt('counter', 'holding', 10, 'u32'),
      pt('running', 'holding', 12, 'bit', { bit: 0 }),
    ];
    const blocks = planReads(points);
    expect(summary(blocks)).toEqual(['holding 10+3']);
    expect(blocks[0]?.points.map((p) => p.name)).toEqual(['counter', 'low_word', 'running', 'alarm']);
  });

  it('readable() lets a block bridge addresses known to be safe', () => {
    const points = [pt('a', 'holding', 0), pt('b', 'holding', 5)];
    expect(summary(planReads(points, { readable: (_fn, a) => a < 10 }))).toEqual(['holding 0+6']);
    expect(summary(planReads(points, { readable: (_fn, a) => a !== 3 }))).toEqual(['holding 0+1', 'holding 5+1']);
  });

  it('refused() addresses are holes: their points are left out and no block bridges them', () => {
    const points = [pt('a', 'input', 0), pt('b', 'input', 1, 'u32'), pt('c', 'input', 3), pt('d', 'input', 4)];
    expect(summary(planReads(points))).toEqual(['input 0+5']);
    const refused = (_fn: string, a: number) => a === 2;
    const blocks = planReads(points, { refused });
    expect(summary(blocks)).toEqual(['input 0+1', 'input 3+2']);
    expect(blocks.flatMap((b) => b.points.map((p) => p.name))).toEqual(['a', 'c', 'd']);
    // even where the caller says a gap is readable, a refused address is not
    expect(summary(planReads([pt('a', 'input', 0), pt('d', 'input', 4)], { readable: () => true, refused }))).toEqual([
      'input 0+1',
      'input 4+1',
    ]);
  });

  it('an empty list plans no reads', () => {
    expect(planReads([])).toEqual([]);
  });

  it('matches the brute-force optimum on random layouts with holes', () => {
    const rand = seededRandom(42);
    const types: ValueType[] = ['u16', 'u32', 'f32', 'f64'];
    for (let round = 0; round < 200; round++) {
      const points: PointDef[] = [];
      let address = Math.floor(rand() * 5);
      const n = 1 + Math.floor(rand() * 40);
      for (let i = 0; i < n; i++) {
        const type = types[Math.floor(rand() * types.length)] as ValueType;
        points.push(pt(`p${i}`, 'input', address, type));
        address += pointWidth({ type, function: 'input' }) + (rand() < 0.3 ? 1 + Math.floor(rand() * 3) : 0);
      }
      const max = 4 + Math.floor(rand() * 20);
      const shuffled = [...points].sort(() => rand() - 0.5);
      const blocks = planReads(shuffled, { maxRegisters: max });
      assertSoundPlan(points, blocks, max);
      expect(blocks.length).toBe(bruteForceOptimum(points, max));
      expect(optimalBlockCount(points, { maxRegisters: max })).toBe(blocks.length);
    }
  });
});

describe('sliceForPoint', () => {
  const block: ReadBlock = { function: 'input', address: 70, count: 6, points: [] };
  const freq = pt('frequency', 'input', 70, 'f32');
  const exp = pt('export_energy', 'input', 74, 'f32');

  it('cuts each point out of the block response', () => {
    const data = [0x4248, 0x0000, 0x4366, 0x8000, 0x3f7a, 0xe148];
    expect(sliceForPoint(block, data, freq)).toEqual([0x4248, 0x0000]);
    expect(decodePoint(exp, sliceForPoint(block, data, exp))).toBe(0.98);
  });

  it('bit responses padded to whole bytes are fine; booleans become 0/1', () => {
    const coils: ReadBlock = { function: 'coil', address: 0, count: 3, points: [] };
    expect(
      sliceForPoint(coils, [true, false, true, false, false, false, false, false], pt('r3', 'coil', 2, 'bit')),
    ).toEqual([1]);
  });

  it('refuses points outside the block and short responses', () => {
    expect(() => sliceForPoint(block, [1, 2, 3, 4, 5, 6], pt('x', 'input', 76, 'f32'))).toThrow(/not inside/);
    expect(() => sliceForPoint(block, [1, 2, 3, 4, 5, 6], pt('x', 'holding', 70, 'f32'))).toThrow(/not inside/);
    expect(() => sliceForPoint(block, [1, 2, 3], exp)).toThrow(/needs 6/);
  });
});

describe('counts for benchmarks', () => {
  it('naive = one read per point; optimal = the plan', () => {
    const p = loadProfile('eastron-sdm630');
    expect(naiveReadCount(p.points)).toBe(p.points.length);
    expect(optimalBlockCount(p.points, { maxRegisters: p.maxReadRegisters })).toBe(
      planReads(p.points, { maxRegisters: p.maxReadRegisters }).length,
    );
    expect(optimalBlockCount(p.points)).toBeLessThan(naiveReadCount(p.points) / 3);
  });
});
