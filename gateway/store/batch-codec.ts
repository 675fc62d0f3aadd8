/**
 * The readings of one commit, packed into one BLOB (the `data` column of `batches`, schema v3).
 *
 * Why: at 100 readings a second and one fsynced commit a second, what an SD card is asked to write
 * is set by the pages a commit touches, not by the readings. One SQLite row per reading (~29 bytes
 * in the leaves) made every commit rewrite page 1, the right-most interior page, the partly filled
 * last leaf and three new leaves. One row per commit of ~7 bytes per reading touches page 1, the
 * leaf holding the short cell and its overflow pages (see docs/performance.md).
 *
 * Seqs are not stored: the row key is the first seq and the readings of a row have consecutive
 * seqs. Layout: a version byte, then per reading
 *   tag      kind (bits 0–2) | quality (bits 3–5) | unsynced (bit 6) | absolute times (bit 7)
 *   series   varint series*2 + (boot differs from the previous reading's), then varint boot if so
 *   ts, mono zigzag varints: ts − previous ts, and (mono − previous mono) − (ts − previous ts),
 *            which is 0 for readings of the same clock; with bit 7, both as float64 instead
 *   value    by kind: null, zigzag int, decimal m / 10^k (k = 1…4) as zigzag m, float64, UTF-8 string
 * Every value decodes to exactly the number it was (the decimal kinds are checked before use).
 */

/** One reading as the store keeps it: names and boot ids are ids into the store's dictionaries. */
export interface RawRow {
  seq: number;
  /** series id (device, point, unit) in the `series` table */
  series: number;
  /** wall time, ms */
  ts: number;
  /** monotonic time of its boot, ms */
  mono: number;
  value: number | string | null;
  /** quality code (core/reading.ts qualityCode) */
  quality: number;
  /** bit set: FLAG_UNSYNCED */
  flags: number;
  /** boot row id in the `boots` table */
  boot: number;
}

/** Reading flag bit: the wall clock was not known to be synchronised when it was stamped. */
export const FLAG_UNSYNCED = 1;

/** Whether a row's wall time was stamped before the clock was known to be synchronised. */
export function isUnsynced(row: RawRow): boolean {
  return (row.flags & FLAG_UNSYNCED) !== 0;
}

/**
 * Decoded readings as the sync agent's columns, filled straight from a batch: a backlog drain
 * reads millions of readings, and a row array per reading (with its boxed numbers) made garbage
 * collection a third of the drain's time under the gateway's small young generation. Numbers sit
 * in typed arrays; `decimals`/`scaled` keep how the store held each value (m / 10^k), so that the
 * wire encoder need not search for a scale again: the shipped gateway runs without an optimizing
 * compiler for most of its code, where every per-reading call and allocation shows in a drain.
 */
export class ColumnBuilder {
  seqs = new Float64Array(64);
  series = new Int32Array(64);
  ts = new Float64Array(64);
  quality = new Uint8Array(64);
  values: (number | string | null)[] = [];
  /** k when the value is exactly scaled[i] / 10^k (k = 0 for integers), else -1 */
  decimals = new Int8Array(64);
  scaled = new Float64Array(64);
  count = 0;

  /** Room for `more` readings beyond count. */
  reserve(more: number): void {
    const need = this.count + more;
    if (need <= this.seqs.length) return;
    let size = this.seqs.length * 2;
    while (size < need) size *= 2;
    const grow = <T extends Float64Array | Int32Array | Uint8Array | Int8Array>(a: T, make: (n: number) => T): T => {
      const b = make(size);
      b.set(a.subarray(0, this.count));
      return b;
    };
    this.seqs = grow(this.seqs, (n) => new Float64Array(n));
    this.series = grow(this.series, (n) => new Int32Array(n));
    this.ts = grow(this.ts, (n) => new Float64Array(n));
    this.quality = grow(this.quality, (n) => new Uint8Array(n));
    this.decimals = grow(this.decimals, (n) => new Int8Array(n));
    this.scaled = grow(this.scaled, (n) => new Float64Array(n));
  }

  /** Keeps the first n readings only. */
  truncate(n: number): void {
    if (n >= this.count) return;
    this.count = Math.max(0, n);
    this.values.length = this.count;
  }
}

export const CODEC_VERSION = 1;

const K_NULL = 0;
const K_INT = 1;
const K_DEC1 = 2; // …K_DEC1 + 3 = 10^4
const K_F64 = 6;
const K_STR = 7;
const POW10 = [1, 10, 100, 1000, 10000];
/** zigzag of magnitudes up to 2^52 stays an exact double */
const ZZ_MAX = 2 ** 52;

export class BatchEncoder {
  private buf = Buffer.allocUnsafe(4096);
  private pos = 0;
  private prevTs = 0;
  private prevMono = 0;
  private prevBoot = 0;
  /** readings in the current batch */
  count = 0;

  reset(): void {
    this.pos = 0;
    this.prevTs = 0;
    this.prevMono = 0;
    this.prevBoot = 0;
    this.count = 0;
    this.buf[this.pos++] = CODEC_VERSION;
  }

  constructor() {
    this.reset();
  }

  /** Appends one reading (its seq is implied: the next after the previous one). */
  add(row: Omit<RawRow, 'seq'>): void {
    const { series, ts, mono, value, quality, flags, boot } = row;
    let strBytes = 0;
    if (typeof value === 'string') strBytes = Buffer.byteLength(value, 'utf8');
    this.ensure(48 + strBytes);
    const tagAt = this.pos++;
    let tag = ((quality & 7) << 3) | (flags & FLAG_UNSYNCED ? 64 : 0);

    const bootChanged = boot !== this.prevBoot;
    this.uvarint(series * 2 + (bootChanged ? 1 : 0));
    if (bootChanged) {
      this.uvarint(boot);
      this.prevBoot = boot;
    }

    const d = ts - this.prevTs;
    const skew = mono - this.prevMono - d;
    if (
      Math.abs(d) <= ZZ_MAX &&
      Math.abs(skew) <= ZZ_MAX &&
      Number.isInteger(d) &&
      Number.isInteger(skew) &&
      this.prevTs + d === ts &&
      this.prevMono + d + skew === mono
    ) {
      this.zigzag(d);
      this.zigzag(skew);
    } else {
      tag |= 128;
      this.f64(ts);
      this.f64(mono);
    }
    this.prevTs = ts;
    this.prevMono = mono;

    if (value === null) {
      tag |= K_NULL;
    } else if (typeof value === 'string') {
      tag |= K_STR;
      this.uvarint(strBytes);
      this.pos += this.buf.write(value, this.pos, strBytes, 'utf8');
    } else if (Number.isInteger(value) && Math.abs(value) <= ZZ_MAX) {
      tag |= K_INT;
      this.zigzag(value === 0 ? 0 : value); // -0 is stored as 0, as SQLite's REAL affinity did
    } else {
      let kind = K_F64;
      if (Number.isFinite(value)) {
        for (let k = 1; k <= 4; k++) {
          const m = Math.round(value * POW10[k]!);
          if (Math.abs(m) <= ZZ_MAX && m / POW10[k]! === value) {
            kind = K_DEC1 + k - 1;
            this.zigzag(m);
            break;
          }
        }
      }
      if (kind === K_F64) this.f64(value);
      tag |= kind;
    }
    this.buf[tagAt] = tag;
    this.count++;
  }

  /** The encoded batch (a copy: the encoder is reused). */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private uvarint(v: number): void {
    const b = this.buf;
    while (v >= 128) {
      b[this.pos++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    b[this.pos++] = v;
  }

  private zigzag(v: number): void {
    this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  private f64(v: number): void {
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }
}

/** Encodes rows with consecutive seqs (the caller's responsibility) into one batch. */
export function encodeRows(rows: readonly RawRow[], enc = new BatchEncoder()): Buffer {
  enc.reset();
  for (const r of rows) enc.add(r);
  return enc.finish();
}

/**
 * Decodes a batch whose first reading has seq firstSeq; pushes the rows with lo ≤ seq ≤ hi
 * (all by default) to out and returns the number of readings in the batch.
 */
export function decodeBatch(
  firstSeq: number,
  data: Uint8Array,
  out: RawRow[],
  lo = Number.NEGATIVE_INFINITY,
  hi = Number.POSITIVE_INFINITY,
): number {
  if (data[0] !== CODEC_VERSION) throw new Error(`unknown batch format ${data[0]} at seq ${firstSeq}`);
  const rows = out;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const end = data.length;
  let p = 1;
  let ts = 0;
  let mono = 0;
  let boot = 0;
  let seq = firstSeq;

  const uvarint = (): number => {
    let b = data[p++]!;
    if (b < 128) return b;
    let v = b & 127;
    let mul = 128;
    for (;;) {
      b = data[p++]!;
      v += (b & 127) * mul;
      if (b < 128) return v;
      mul *= 128;
    }
  };
  const zigzag = (): number => {
    const z = uvarint();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  };

  while (p < end) {
    const tag = data[p++]!;
    const s = uvarint();
    const series = Math.floor(s / 2);
    if (s % 2 === 1) boot = uvarint();
    if (tag & 128) {
      ts = view.getFloat64(p, true);
      mono = view.getFloat64(p + 8, true);
      p += 16;
    } else {
      const d = zigzag();
      const skew = zigzag();
      mono = mono + d + skew;
      ts = ts + d;
    }
    const kind = tag & 7;
    let value: number | string | null;
    if (kind === K_NULL) value = null;
    else if (kind === K_INT) value = zigzag();
    else if (kind === K_F64) {
      value = view.getFloat64(p, true);
      p += 8;
    } else if (kind === K_STR) {
      const n = uvarint();
      value = Buffer.from(data.buffer, data.byteOffset + p, n).toString('utf8');
      p += n;
    } else value = zigzag() / POW10[kind - K_DEC1 + 1]!;
    if (p > end) throw new Error(`batch at seq ${firstSeq} is truncated`);
    if (seq >= lo && seq <= hi) {
      rows.push({
        seq,
        series,
        ts,
        mono,
        value,
        quality: (tag >> 3) & 7,
        flags: tag & 64 ? FLAG_UNSYNCED : 0,
        boot,
      });
    }
    seq++;
  }
  return seq - firstSeq;
}

/** A varint of more than one byte whose first byte (≥ 128) the caller read; data[p] is the next. Sets longEnd. */
function longVarint(data: Uint8Array, p: number, first: number): number {
  let v = first & 127;
  let mul = 128;
  for (;;) {
    // a varint cut off by the end of the blob would read `undefined` forever
    if (p >= data.length) throw new Error('a packed batch ends inside a number (truncated)');
    const b = data[p++]!;
    v += (b & 127) * mul;
    if (b < 128) {
      longEnd = p;
      return v;
    }
    mul *= 128;
  }
}
/** where longVarint stopped (a module slot, not an array per call) */
let longEnd = 0;

/**
 * decodeBatch into columns: a drain's per-reading loop, so named hot… (the shipped gateway lets the
 * optimizing compiler at those functions alone: bin/langbiang.js). One-byte varints inline, no
 * closure calls, typed-array stores. Stops once `cols` holds `want` readings; returns the number
 * of readings it read past.
 */
export function hotDecodeColumns(
  firstSeq: number,
  data: Uint8Array,
  cols: ColumnBuilder,
  lo: number,
  hi: number,
  want: number,
): number {
  if (data[0] !== CODEC_VERSION) throw new Error(`unknown batch format ${data[0]} at seq ${firstSeq}`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const end = data.length;
  let p = 1;
  let ts = 0;
  let seq = firstSeq;
  let i = cols.count;
  const seqs = cols.seqs;
  const seriesCol = cols.series;
  const tsCol = cols.ts;
  const qualityCol = cols.quality;
  const decimals = cols.decimals;
  const scaled = cols.scaled;
  const values = cols.values;
  const room = seqs.length;
  while (p < end && i < want) {
    const tag = data[p++]!;
    let s = data[p++]!;
    if (s >= 128) {
      s = longVarint(data, p, s);
      p = longEnd;
    }
    if (s & 1) {
      // a boot id: the columns do not carry it
      if (data[p++]! >= 128) {
        longVarint(data, p, data[p - 1]!);
        p = longEnd;
      }
    }
    if (tag & 128) {
      ts = view.getFloat64(p, true);
      p += 16;
    } else {
      let z = data[p++]!;
      if (z >= 128) {
        z = longVarint(data, p, z);
        p = longEnd;
      }
      ts += z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      // the monotonic skew: not a column either
      if (data[p++]! >= 128) {
        longVarint(data, p, data[p - 1]!);
        p = longEnd;
      }
    }
    const kind = tag & 7;
    let value: number | string | null;
    let k = -1;
    let m = 0;
    if (kind === K_NULL) value = null;
    else if (kind === K_F64) {
      value = view.getFloat64(p, true);
      p += 8;
    } else if (kind === K_STR) {
      let n = data[p++]!;
      if (n >= 128) {
        n = longVarint(data, p, n);
        p = longEnd;
      }
      value = Buffer.from(data.buffer, data.byteOffset + p, n).toString('utf8');
      p += n;
    } else {
      let z = data[p++]!;
      if (z >= 128) {
        z = longVarint(data, p, z);
        p = longEnd;
      }
      m = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      k = kind === K_INT ? 0 : kind - K_DEC1 + 1;
      value = k === 0 ? m : m / POW10[k]!;
    }
    if (p > end) throw new Error(`batch at seq ${firstSeq} is truncated`);
    if (seq >= lo && seq <= hi) {
      if (i >= room) throw new Error('hotDecodeColumns: reserve() room for the batch first');
      seqs[i] = seq;
      seriesCol[i] = (s - (s & 1)) / 2;
      tsCol[i] = ts;
      qualityCol[i] = (tag >> 3) & 7;
      decimals[i] = k;
      scaled[i] = m;
      values[i] = value;
      i++;
    }
    seq++;
  }
  cols.count = i;
  return seq - firstSeq;
}
