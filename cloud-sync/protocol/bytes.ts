import { LangbiangError } from '../../gateway/core/errors.js';

/**
 * The reading side of the native encoding's bytes: unsigned LEB128 varints up to 2^53 (arithmetic,
 * not 32-bit bit operations, so seqs and timestamps never wrap) and zig-zag for signed deltas. The
 * writing side is inlined in native.ts (one reused buffer).
 */
export const MAX_VARINT = Number.MAX_SAFE_INTEGER;

export function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

export function unzigzag(z: number): number {
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
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
