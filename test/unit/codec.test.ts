import { describe, expect, it } from 'vitest';
import { applyScale, decodePoint, encodePoint, shortestFloat32 } from '../../drivers/modbus/codec.js';
import { LangbiangError } from '../../gateway/core/errors.js';
import type { PointDef } from '../../gateway/core/point.js';

function pt(over: Partial<PointDef>): PointDef {
  return {
    name: 'x',
    function: 'holding',
    address: 0,
    type: 'u16',
    byteOrder: 'big',
    wordOrder: 'big',
    scale: 1,
    offset: 0,
    writable: true,
    ...over,
  };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LangbiangError);
    return (err as LangbiangError).code;
  }
  return undefined;
}

const ORDERS = [
  { name: 'ABCD', byteOrder: 'big', wordOrder: 'big' },
  { name: 'CDAB', byteOrder: 'big', wordOrder: 'little' },
  { name: 'BADC', byteOrder: 'little', wordOrder: 'big' },
  { name: 'DCBA', byteOrder: 'little', wordOrder: 'little' },
] as const;

describe('16-bit integers', () => {
  it.each([
    ['u16', [0x0000], 0],
    ['u16', [0xffff], 65535],
    ['i16', [0xff9c], -100],
    ['i16', [0x8000], -32768],
    ['i16', [0x7fff], 32767],
  ] as const)('%s %j -> %d', (type, words, expected) => {
    expect(decodePoint(pt({ type }), words)).toBe(expected);
    expect(encodePoint(pt({ type }), expected)).toEqual(words);
  });

  it('negative temperature with scale 0.1 (CWT soil probe, -10.0 °C)', () => {
    expect(decodePoint(pt({ type: 'i16', scale: 0.1 }), [0xff9c])).toBe(-10);
  });

  it('byteOrder little swaps the two bytes of a register', () => {
    expect(decodePoint(pt({ type: 'u16', byteOrder: 'little' }), [0x3412])).toBe(0x1234);
    expect(encodePoint(pt({ type: 'u16', byteOrder: 'little' }), 0x1234)).toEqual([0x3412]);
  });
});

describe('32-bit integers in both word orders', () => {
  it.each([
    ['u32', 'big', [0x1234, 0x5678], 0x12345678],
    ['u32', 'little', [0x5678, 0x1234], 0x12345678],
    ['i32', 'big', [0xffff, 0xfffe], -2],
    ['i32', 'little', [0xfffe, 0xffff], -2],
    ['i32', 'big', [0x8000, 0x0000], -2147483648],
    ['u32', 'big', [0xffff, 0xffff], 4294967295],
  ] as const)('%s word order %s %j -> %d', (type, wordOrder, words, expected) => {
    const p = pt({ type, wordOrder });
    expect(decodePoint(p, words)).toBe(expected);
    expect(encodePoint(p, expected)).toEqual(words);
  });
});

describe('f32 in all four orders', () => {
  // 230.5 = 0x43668000 (big-endian bytes A=43 B=66 C=80 D=00)
  const cases: Record<string, number[]> = {
    ABCD: [0x4366, 0x8000],
    CDAB: [0x8000, 0x4366],
    BADC: [0x6643, 0x0080],
    DCBA: [0x0080, 0x6643],
  };
  it.each(ORDERS)('230.5 V as $name', ({ name, byteOrder, wordOrder }) => {
    const p = pt({ type: 'f32', byteOrder, wordOrder, function: 'input', writable: false });
    expect(decodePoint(p, cases[name] ?? [])).toBe(230.5);
    expect(encodePoint(p, 230.5)).toEqual(cases[name]);
  });

  it('gives the shortest decimal of the float32 (0.98 power factor, not 0.9800000190734863)', () => {
    expect(decodePoint(pt({ type: 'f32' }), [0x3f7a, 0xe148])).toBe(0.98);
    expect(decodePoint(pt({ type: 'f32' }), [0x4640, 0xe6ae])).toBe(12345.67);
    expect(shortestFloat32(Math.fround(0.1))).toBe(0.1);
  });

  it('NaN and infinity are decode failures', () => {
    expect(codeOf(() => decodePoint(pt({ type: 'f32' }), [0x7fc0, 0x0000]))).toBe('DECODE_FAILED');
    expect(codeOf(() => decodePoint(pt({ type: 'f32' }), [0x7f80, 0x0000]))).toBe('DECODE_FAILED');
  });
});

describe('f64', () => {
  it.each(ORDERS)('1234.5678 as $name round-trips', ({ byteOrder, wordOrder }) => {
    const p = pt({ type: 'f64', byteOrder, wordOrder });
    const words = encodePoint(p, 1234.5678);
    expect(words).toHaveLength(4);
    expect(decodePoint(p, words)).toBe(1234.5678);
  });

  it('big-endian word pattern is the IEEE 754 bytes', () => {
    expect(decodePoint(pt({ type: 'f64' }), [0x4093, 0x4a45, 0x6d5c, 0xfaad])).toBe(1234.5678);
    expect(decodePoint(pt({ type: 'f64', wordOrder: 'little' }), [0xfaad, 0x6d5c, 0x4a45, 0x4093])).toBe(1234.5678);
  });
});

describe('scale and offset', () => {
  it.each([
    [235, 0.1, 0, 23.5],
    [1, 0.1, 0, 0.1],
    [3, 0.1, 0, 0.3],
    [701, 0.01, 0, 7.01],
    [65535, 0.001, 0, 65.535],
    [1000, 0.1, -40, 60],
    [123, 0.1, 0.05, 12.35],
    [7, 2, 0, 14],
  ])('raw %d * %d + %d = %d exactly', (raw, scale, offset, expected) => {
    expect(decodePoint(pt({ scale, offset }), [raw])).toBe(expected);
    expect(encodePoint(pt({ scale, offset }), expected)).toEqual([raw]);
  });

  it('integer types round the raw value when encoding', () => {
    expect(encodePoint(pt({ scale: 0.1 }), 23.54)).toEqual([235]);
    expect(encodePoint(pt({ scale: 0.1 }), 23.56)).toEqual([236]);
  });

  it('float raw values are scaled without rounding them to the scale', () => {
    expect(applyScale(1.2345, 0.001, 0, false)).toBe(0.0012345);
    expect(applyScale(1.5, 1000, 0, false)).toBe(1500);
  });
});

describe('bits', () => {
  it('coil and discrete input decode to 0/1, booleans accepted', () => {
    const coil = pt({ function: 'coil', type: 'bit' });
    expect(decodePoint(coil, [1])).toBe(1);
    expect(decodePoint(coil, [false])).toBe(0);
    expect(decodePoint(pt({ function: 'discrete', type: 'bit', writable: false }), [true])).toBe(1);
    expect(encodePoint(coil, true)).toEqual([1]);
    expect(encodePoint(coil, 0)).toEqual([0]);
  });

  it('bit fields of a holding register', () => {
    const word = 0b1010_0000_0000_0101;
    const bitOf = (bit: number) => decodePoint(pt({ type: 'bit', bit }), [word]);
    expect([0, 1, 2, 13, 14, 15].map(bitOf)).toEqual([1, 0, 1, 1, 0, 1]);
  });

  it('writing a bit field keeps the other 15 bits of the current register', () => {
    expect(encodePoint(pt({ type: 'bit', bit: 1 }), true, [0b1000_0000_0000_0101])).toEqual([0b1000_0000_0000_0111]);
    expect(encodePoint(pt({ type: 'bit', bit: 15 }), false, [0b1000_0000_0000_0101])).toEqual([0b0000_0000_0000_0101]);
    expect(codeOf(() => encodePoint(pt({ type: 'bit', bit: 1 }), true))).toBe('ENCODE_FAILED');
  });

  it('a bit is 0 or 1 only', () => {
    expect(codeOf(() => encodePoint(pt({ function: 'coil', type: 'bit' }), 2))).toBe('OUT_OF_RANGE');
    expect(codeOf(() => decodePoint(pt({ function: 'coil', type: 'bit' }), [2]))).toBe('DECODE_FAILED');
  });
});

describe('strings', () => {
  const s = (over: Partial<PointDef> = {}) => pt({ type: 'string', length: 4, ...over });
  it('two ASCII characters per register, trailing NUL and spaces trimmed', () => {
    expect(decodePoint(s(), [0x5344, 0x4d31, 0x3230, 0x0000])).toBe('SDM120');
    expect(decodePoint(s(), [0x4142, 0x2020, 0x2020, 0x2020])).toBe('AB');
    expect(decodePoint(s({ length: 2 }), [0x4142, 0x4300])).toBe('ABC');
  });
  it('byteOrder little reads the low byte first', () => {
    expect(decodePoint(s({ length: 2, byteOrder: 'little' }), [0x4241, 0x0043])).toBe('ABC');
  });
  it('encodes with NUL padding and round-trips', () => {
    expect(encodePoint(s(), 'SDM120')).toEqual([0x5344, 0x4d31, 0x3230, 0x0000]);
    expect(decodePoint(s({ byteOrder: 'little' }), encodePoint(s({ byteOrder: 'little' }), 'Hi!'))).toBe('Hi!');
  });
  it('refuses non-ASCII and too-long strings', () => {
    expect(codeOf(() => decodePoint(s({ length: 1 }), [0x41ff]))).toBe('DECODE_FAILED');
    expect(codeOf(() => encodePoint(s({ length: 1 }), 'ABC'))).toBe('ENCODE_FAILED');
    expect(codeOf(() => encodePoint(s({ length: 1 }), 'é'))).toBe('ENCODE_FAILED');
  });
});

describe('encode round-trips', () => {
  it.each([
    ['i16', 0.1, 0, -12.3],
    ['u16', 0.01, 0, 655.35],
    ['u32', 0.001, 0, 4294967.295],
    ['i32', 1, 0, -123456],
    ['f32', 1, 0, 49.98],
    ['f64', 1, 0, -0.001],
    ['u16', 1, -40, -40],
  ] as const)('%s scale %d offset %d: %d', (type, scale, offset, value) => {
    for (const o of ORDERS) {
      const p = pt({ type, scale, offset, byteOrder: o.byteOrder, wordOrder: o.wordOrder });
      expect(decodePoint(p, encodePoint(p, value))).toBe(value);
    }
  });
});

describe('errors', () => {
  it('encode refuses values outside the point min/max', () => {
    const level = pt({ min: 0, max: 254 });
    expect(codeOf(() => encodePoint(level, 255))).toBe('OUT_OF_RANGE');
    expect(codeOf(() => encodePoint(level, -1))).toBe('OUT_OF_RANGE');
    expect(encodePoint(level, 254)).toEqual([254]);
  });

  it('encode refuses values the raw type cannot hold', () => {
    expect(codeOf(() => encodePoint(pt({ type: 'u16' }), 65536))).toBe('OUT_OF_RANGE');
    expect(codeOf(() => encodePoint(pt({ type: 'u16' }), -1))).toBe('OUT_OF_RANGE');
    expect(codeOf(() => encodePoint(pt({ type: 'i16', scale: 0.1 }), 3276.8))).toBe('OUT_OF_RANGE');
    expect(codeOf(() => encodePoint(pt({ type: 'f32' }), 1e39))).toBe('OUT_OF_RANGE');
  });

  it('encode refuses NaN, infinity and wrong value kinds', () => {
    expect(codeOf(() => encodePoint(pt({}), Number.NaN))).toBe('ENCODE_FAILED');
    expect(codeOf(() => encodePoint(pt({}), Number.POSITIVE_INFINITY))).toBe('ENCODE_FAILED');
    expect(codeOf(() => encodePoint(pt({}), 'twelve'))).toBe('ENCODE_FAILED');
    expect(codeOf(() => encodePoint(pt({ type: 'string', length: 2 }), 12))).toBe('ENCODE_FAILED');
  });

  it('decode refuses the wrong number of words and words that are not u16', () => {
    expect(codeOf(() => decodePoint(pt({ type: 'f32' }), [0x4366]))).toBe('DECODE_FAILED');
    expect(codeOf(() => decodePoint(pt({}), [70000]))).toBe('DECODE_FAILED');
    expect(codeOf(() => decodePoint(pt({}), [1.5]))).toBe('DECODE_FAILED');
    expect(codeOf(() => decodePoint(pt({}), []))).toBe('DECODE_FAILED');
  });

  it('error messages name the point', () => {
    expect(() => encodePoint(pt({ name: 'brightness', max: 254 }), 300)).toThrow(/brightness/);
  });
});
