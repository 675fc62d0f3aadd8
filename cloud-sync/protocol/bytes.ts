import { LangbiangError } from '../../gateway/core/errors.js';

/**
 * Byte-level helpers of the native encoding: unsigned LEB128 varints up to 2^53 (arithmetic, not
 * 32-bit bit operations, so seqs and timestamps never wrap) and zig-zag for signed deltas.
 */
export const MAX_VARINT = Number.MAX_SAFE_INTEGER;

export function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

export function unzigzag(z: number): number {
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

/** A growable output buffer. */
export class ByteWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initial = 1024) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  varint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new LangbiangError('ENCODE_FAILED', `cannot encode ${n} as a varint (must be a safe non-negative integer)`);
    }
    this.ensure(8);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  svarint(n: number): void {
    this.varint(zigzag(n));
  }

  f32(v: number): void {
    this.ensure(4);
    this.buf.writeFloatLE(v, this.pos);
    this.pos += 4;
  }

  f64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.varint(b.length);
    this.bytes(b);
  }

  get length(): number {
    return this.pos;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bounds-checked reader: any read past the end or any malformed field throws DECODE_FAILED. */
export class ByteReader {
  pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
  ) {}

  fail(msg: string): never {
    throw new LangbiangError('DECODE_FAILED', `${this.what}: ${msg} (at byte ${this.pos})`);
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  byte(): number {
    if (this.pos >= this.buf.length) this.fail('truncated');
    return this.buf[this.pos++]!;
  }

  varint(): number {
    let n = 0;
    let mul = 1;
    for (let i = 0; ; i++) {
      if (i >= 8) this.fail('varint longer than 8 bytes');
      const b = this.byte();
      n += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) break;
      mul *= 0x80;
    }
    if (n > MAX_VARINT) this.fail('varint larger than 2^53');
    return n;
  }

  svarint(): number {
    return unzigzag(this.varint());
  }

  f32(): number {
    if (this.remaining < 4) this.fail('truncated');
    const v = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, 4).readFloatLE(0);
    this.pos += 4;
    return v;
  }

  f64(): number {
    if (this.remaining < 8) this.fail('truncated');
    const v = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, 8).readDoubleLE(0);
    this.pos += 8;
    return v;
  }

  string(maxLen: number): string {
    const len = this.varint();
    if (len > maxLen) this.fail(`string of ${len} bytes is longer than ${maxLen}`);
    return this.utf8(len);
  }

  /** `len` bytes of UTF-8 (the length was read already). */
  utf8(len: number): string {
    if (len > this.remaining) this.fail('truncated string');
    const bytes = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    try {
      return utf8.decode(bytes);
    } catch {
      return this.fail('string is not valid UTF-8');
    }
  }

  /** `len` raw bytes. */
  bytes(len: number): Uint8Array {
    if (len > this.remaining) this.fail('truncated');
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }
}
