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
 * collection a third of the drain's time under the gateway's small young generation.
 */
export class ColumnBuilder {
  readonly seqs: number[] = [];
  readonly series: number[] = [];
  readonly ts: number[] = [];
  readonly quality: number[] = [];
  readonly values: (number | string | null)[] = [];

  get count(): number {
    return this.seqs.length;
  }

  /** Keeps the first n readings only. */
  truncate(n: number): void {
    if (n >= this.seqs.length) return;
    this.seqs.length = n;
    this.series.length = n;
    this.ts.length = n;
    this.quality.length = n;
    this.values.length = n;
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
 * (all by default) to out — as rows, or into columns — and returns the number of readings in the batch.
 */
export function decodeBatch(
  firstSeq: number,
  data: Uint8Array,
  out: RawRow[] | ColumnBuilder,
  lo = Number.NEGATIVE_INFINITY,
  hi = Number.POSITIVE_INFINITY,
): number {
  if (data[0] !== CODEC_VERSION) throw new Error(`unknown batch format ${data[0]} at seq ${firstSeq}`);
  const columns = out instanceof ColumnBuilder ? out : null;
  const rows = columns ? null : (out as RawRow[]);
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
      if (columns) {
        columns.seqs.push(seq);
        columns.series.push(series);
        columns.ts.push(ts);
        columns.quality.push((tag >> 3) & 7);
        columns.values.push(value);
      } else
        rows!.push({
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
