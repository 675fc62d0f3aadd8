/**
 * Register codec: Modbus words/bits <-> engineering values, as a profile's PointDef describes them.
 *
 * Byte and word order follow the usual four-letter names for a 32-bit value whose big-endian
 * bytes are A B C D:
 *   byteOrder big,    wordOrder big    -> ABCD (Modbus default)
 *   byteOrder big,    wordOrder little -> CDAB ("word swapped", common on meters and PLCs)
 *   byteOrder little, wordOrder big    -> BADC ("byte swapped")
 *   byteOrder little, wordOrder little -> DCBA
 * byteOrder applies inside every 16-bit register (also u16/i16, bit fields and strings);
 * wordOrder only orders the registers of 32/64-bit values.
 */
import { LangbiangError } from '../../gateway/core/errors.js';
import { type PointDef, pointWidth } from '../../gateway/core/point.js';

/** Words or bits as they came off the wire; bit reads may arrive as booleans. */
export type WireData = ReadonlyArray<number | boolean>;

type RawRange = { min: number; max: number; integer: boolean };

const RAW_RANGES: Record<Exclude<PointDef['type'], 'string'>, RawRange> = {
  bit: { min: 0, max: 1, integer: true },
  u16: { min: 0, max: 0xffff, integer: true },
  i16: { min: -0x8000, max: 0x7fff, integer: true },
  u32: { min: 0, max: 0xffffffff, integer: true },
  i32: { min: -0x80000000, max: 0x7fffffff, integer: true },
  f32: { min: -3.4028234663852886e38, max: 3.4028234663852886e38, integer: false },
  f64: { min: -Number.MAX_VALUE, max: Number.MAX_VALUE, integer: false },
};

export function isBitFunction(fn: PointDef['function']): boolean {
  return fn === 'coil' || fn === 'discrete';
}

/** A single bit inside a holding/input register: writing it needs the register's current value. */
export function isRegisterBitField(point: Pick<PointDef, 'function' | 'type'>): boolean {
  return point.type === 'bit' && !isBitFunction(point.function);
}

function label(point: PointDef): string {
  return `point "${point.name}" (${point.function} ${point.address}, ${point.type})`;
}

function decodeFail(point: PointDef, why: string): LangbiangError {
  return new LangbiangError('DECODE_FAILED', `${label(point)}: ${why}`, { point: point.name });
}

function encodeFail(point: PointDef, why: string): LangbiangError {
  return new LangbiangError('ENCODE_FAILED', `${label(point)}: ${why}`, { point: point.name });
}

function outOfRange(point: PointDef, value: number, why: string): LangbiangError {
  return new LangbiangError('OUT_OF_RANGE', `${label(point)}: ${value} ${why}`, {
    point: point.name,
    value,
    min: point.min,
    max: point.max,
  });
}

function swapBytes(word: number): number {
  return ((word & 0xff) << 8) | (word >>> 8);
}

/** Validates the wire data and returns it as plain numbers (one u16 or one 0/1 per entry). */
function checkedWire(point: PointDef, data: WireData): number[] {
  const width = pointWidth(point);
  if (data.length !== width) {
    throw decodeFail(
      point,
      `expected ${width} ${isBitFunction(point.function) ? 'bit' : 'register'}(s), got ${data.length}`,
    );
  }
  const bitFn = isBitFunction(point.function);
  return data.map((d) => {
    const n = typeof d === 'boolean' ? (d ? 1 : 0) : d;
    const max = bitFn ? 1 : 0xffff;
    if (!Number.isInteger(n) || n < 0 || n > max)
      throw decodeFail(point, `wire value ${String(d)} is not a ${bitFn ? 'bit' : '16-bit register'}`);
    return n;
  });
}

/** Registers in wire order -> big-endian bytes of the value (ABCD...). */
function wordsToBytes(point: PointDef, words: readonly number[]): Uint8Array {
  const ordered = point.wordOrder === 'little' ? [...words].reverse() : words;
  const bytes = new Uint8Array(ordered.length * 2);
  ordered.forEach((w, i) => {
    const word = point.byteOrder === 'little' ? swapBytes(w) : w;
    bytes[i * 2] = word >>> 8;
    bytes[i * 2 + 1] = word & 0xff;
  });
  return bytes;
}

/** Big-endian bytes of the value -> registers in wire order. */
function bytesToWords(point: PointDef, bytes: Uint8Array): number[] {
  const words: number[] = [];
  for (let i = 0; i < bytes.length; i += 2) {
    const word = ((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0);
    words.push(point.byteOrder === 'little' ? swapBytes(word) : word);
  }
  return point.wordOrder === 'little' ? words.reverse() : words;
}

/** Decimal places needed to write n exactly as it appears in a profile (0.1 -> 1, 1e-7 -> 7). */
export function decimalsOf(n: number): number {
  if (!Number.isFinite(n) || Number.isInteger(n)) return 0;
  const [mantissa = '', exp] = n.toExponential().split('e');
  const fraction = mantissa.split('.')[1]?.length ?? 0;
  return Math.max(0, fraction - Number(exp));
}

/** The shortest decimal that is the same float32 (0.100000001490116 -> 0.1). */
export function shortestFloat32(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  for (let p = 1; p <= 9; p++) {
    const candidate = Number(x.toPrecision(p));
    if (Math.fround(candidate) === x) return candidate;
  }
  return x;
}

/**
 * raw * scale + offset without float noise: an integer raw value scaled by 0.1 has exactly one
 * decimal, so 235 * 0.1 is 23.5, not 23.500000000000004.
 */
export function applyScale(raw: number, scale: number, offset: number, rawIsInteger: boolean): number {
  if (scale === 1 && offset === 0) return raw;
  const value = raw * scale + offset;
  if (rawIsInteger) {
    const decimals = Math.max(decimalsOf(scale), decimalsOf(offset));
    return Number(value.toFixed(Math.min(decimals, 100)));
  }
  // float raw: keep 15 significant digits, which drops the noise of the multiply and nothing else
  return Number(value.toPrecision(15));
}

/** engineering -> raw, the inverse of applyScale (not rounded). */
function removeScale(value: number, scale: number, offset: number): number {
  if (scale === 1 && offset === 0) return value;
  return Number(((value - offset) / scale).toPrecision(15));
}

function decodeString(point: PointDef, words: readonly number[]): string {
  const bytes: number[] = [];
  for (const w of words) {
    const word = point.byteOrder === 'little' ? swapBytes(w) : w;
    bytes.push(word >>> 8, word & 0xff);
  }
  const nul = bytes.indexOf(0);
  const used = nul < 0 ? bytes : bytes.slice(0, nul);
  for (const b of used) {
    if (b < 0x20 || b > 0x7e)
      throw decodeFail(point, `byte 0x${b.toString(16).padStart(2, '0')} is not printable ASCII`);
  }
  return String.fromCharCode(...used).replace(/ +$/, '');
}

function encodeString(point: PointDef, value: string): number[] {
  const length = point.length ?? 1;
  if (value.length > length * 2) throw encodeFail(point, `"${value}" is longer than ${length * 2} characters`);
  const words: number[] = [];
  for (let i = 0; i < length * 2; i += 2) {
    const hi = i < value.length ? value.charCodeAt(i) : 0;
    const lo = i + 1 < value.length ? value.charCodeAt(i + 1) : 0;
    for (const c of [hi, lo]) {
      if (c !== 0 && (c < 0x20 || c > 0x7e)) throw encodeFail(point, `"${value}" is not printable ASCII`);
    }
    const word = (hi << 8) | lo;
    words.push(point.byteOrder === 'little' ? swapBytes(word) : word);
  }
  return words;
}

function rawFromBytes(point: PointDef, bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (point.type) {
    case 'u16':
      return view.getUint16(0);
    case 'i16':
      return view.getInt16(0);
    case 'u32':
      return view.getUint32(0);
    case 'i32':
      return view.getInt32(0);
    case 'f32':
      return shortestFloat32(view.getFloat32(0));
    case 'f64':
      return view.getFloat64(0);
    default:
      throw decodeFail(point, `type ${point.type} is not a numeric register type`);
  }
}

function bytesFromRaw(point: PointDef, raw: number): Uint8Array {
  const bytes = new Uint8Array(pointWidth(point) * 2);
  const view = new DataView(bytes.buffer);
  switch (point.type) {
    case 'u16':
      view.setUint16(0, raw);
      break;
    case 'i16':
      view.setInt16(0, raw);
      break;
    case 'u32':
      view.setUint32(0, raw);
      break;
    case 'i32':
      view.setInt32(0, raw);
      break;
    case 'f32':
      view.setFloat32(0, raw);
      break;
    case 'f64':
      view.setFloat64(0, raw);
      break;
    default:
      throw encodeFail(point, `type ${point.type} is not a numeric register type`);
  }
  return bytes;
}

/**
 * The point's value from its registers (u16 each) or bits (0/1), in wire order, with scale and
 * offset applied. Bits decode to 0/1, strings to a trimmed ASCII string. Range checks against
 * min/max are the caller's (a reading outside is kept, with quality out_of_range).
 */
export function decodePoint(point: PointDef, data: WireData): number | string {
  const wire = checkedWire(point, data);
  if (isBitFunction(point.function)) return wire[0] ?? 0;
  if (point.type === 'bit') {
    const word = point.byteOrder === 'little' ? swapBytes(wire[0] ?? 0) : (wire[0] ?? 0);
    return (word >>> (point.bit ?? 0)) & 1;
  }
  if (point.type === 'string') return decodeString(point, wire);
  const raw = rawFromBytes(point, wordsToBytes(point, wire));
  if (!Number.isFinite(raw)) throw decodeFail(point, `registers [${wire.join(', ')}] decode to ${raw}`);
  const value = applyScale(raw, point.scale, point.offset, RAW_RANGES[point.type].integer);
  if (!Number.isFinite(value)) throw decodeFail(point, `scaled value is ${value}`);
  return value;
}

/** True when an engineering value lies within the point's declared min/max (if any). */
export function inPointRange(point: Pick<PointDef, 'min' | 'max'>, value: number): boolean {
  if (point.min !== undefined && value < point.min) return false;
  if (point.max !== undefined && value > point.max) return false;
  return true;
}

function checkPointRange(point: PointDef, value: number): void {
  if (point.min !== undefined && value < point.min) throw outOfRange(point, value, `is below the minimum ${point.min}`);
  if (point.max !== undefined && value > point.max) throw outOfRange(point, value, `is above the maximum ${point.max}`);
}

/**
 * The words (or single bit) to write for an engineering value: removes offset and scale, rounds
 * for integer types, and refuses values outside the point's min/max or the raw type's range.
 * A bit field inside a holding register needs `current` (the register as read now) because
 * Modbus can only write whole registers: the other 15 bits are kept.
 */
export function encodePoint(point: PointDef, value: number | boolean | string, current?: WireData): number[] {
  if (point.type === 'string') {
    if (typeof value !== 'string') throw encodeFail(point, `expects a string, got ${typeof value}`);
    return encodeString(point, value);
  }
  if (typeof value === 'string') throw encodeFail(point, `expects a number, got the string "${value}"`);
  const num = typeof value === 'boolean' ? (value ? 1 : 0) : value;
  if (!Number.isFinite(num)) throw encodeFail(point, `cannot write ${num}`);

  if (point.type === 'bit') {
    if (num !== 0 && num !== 1) throw outOfRange(point, num, 'is not a bit (0/1, false/true)');
    checkPointRange(point, num);
    if (isBitFunction(point.function)) return [num];
    if (current?.length !== 1) {
      throw encodeFail(point, 'a bit inside a register needs the current register value (read-modify-write)');
    }
    const [word] = checkedWire(point, current);
    const native = point.byteOrder === 'little' ? swapBytes(word ?? 0) : (word ?? 0);
    const mask = 1 << (point.bit ?? 0);
    const next = num ? native | mask : native & ~mask & 0xffff;
    return [point.byteOrder === 'little' ? swapBytes(next) : next];
  }

  checkPointRange(point, num);
  const range = RAW_RANGES[point.type];
  let raw = removeScale(num, point.scale, point.offset);
  if (range.integer) raw = Math.round(raw);
  if (!Number.isFinite(raw) || raw < range.min || raw > range.max) {
    throw outOfRange(
      point,
      num,
      `does not fit a ${point.type} register value (raw ${raw}, ${range.min}..${range.max})`,
    );
  }
  return bytesToWords(point, bytesFromRaw(point, raw));
}
