import { describe, expect, it } from 'vitest';
import { exhaustiveCover } from '../../bench/modbus-cover.js';
import type { PointDef } from '../../gateway/core/point.js';

/** The Modbus benchmark's yardstick: small cases whose fewest requests are known by hand. */
const pt = (address: number, type: PointDef['type'] = 'u16', fn: PointDef['function'] = 'holding'): PointDef => ({
  name: `p${fn}${address}${type}`,
  function: fn,
  address,
  type,
  byteOrder: 'big',
  wordOrder: 'big',
  scale: 1,
  offset: 0,
  writable: false,
});

describe('bench/modbus-cover: fewest requests by exhaustive search', () => {
  it('reads contiguous points in one request', () => {
    expect(exhaustiveCover([pt(0), pt(1), pt(2, 'f32')])).toBe(1);
  });

  it('never reads across an address no point occupies', () => {
    expect(exhaustiveCover([pt(0), pt(2)])).toBe(2);
  });

  it('counts each function code apart', () => {
    expect(exhaustiveCover([pt(0), pt(1, 'u16', 'input'), pt(0, 'bit', 'coil'), pt(1, 'bit', 'coil')])).toBe(3);
  });

  it('respects the model limit and never splits a 32-bit point', () => {
    // 0..3 as two f32: a limit of 3 registers cannot hold both, nor half of one
    expect(exhaustiveCover([pt(0, 'f32'), pt(2, 'f32')], 3)).toBe(2);
    expect(exhaustiveCover([pt(0, 'f32'), pt(2, 'f32')], 4)).toBe(1);
    expect(() => exhaustiveCover([pt(0, 'f64')], 3)).toThrow(/no request/);
  });

  it('lets requests overlap when points overlap (a bit inside a register read as a word)', () => {
    const bit = { ...pt(1, 'bit'), bit: 3 };
    expect(exhaustiveCover([pt(0), pt(1), bit, pt(2)], 125)).toBe(1);
  });

  it('splits a long run at the protocol limit (125 registers) or the model limit', () => {
    const many = Array.from({ length: 130 }, (_, i) => pt(i));
    expect(exhaustiveCover(many)).toBe(2);
    expect(exhaustiveCover(many, 60)).toBe(3);
  });
});
