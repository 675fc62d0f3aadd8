import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { LangbiangError } from '../../gateway/core/errors.js';
import { QUALITIES, type Quality } from '../../gateway/core/reading.js';
import { ByteReader } from './bytes.js';
import { dictionaryV2 } from './dictionary.js';
import type { TelemetryBatch, WireReading } from './types.js';

/**
 * The native telemetry encoding (docs/protocol.md is the specification; keep the two in step).
 * Made for cellular links: one message carries a batch; seqs, timestamps and series as deltas;
 * values as per-series deltas of scaled integers where that is exact; the body deflated with a
 * preset dictionary of the shipped profiles' point names, so a message's name table costs a few
 * bytes. The encoder writes version 2; the decoder also reads version 1 (gateways not yet updated).
 */
export const NATIVE_VERSION = 2;
/** Versions decodeTelemetry reads. */
export const NATIVE_VERSIONS: readonly number[] = [1, 2];
export const FLAG_DEFLATE = 0x01;
/** v2: the epoch field holds raw bytes; the epoch is their lowercase hex. */
export const FLAG_EPOCH_HEX = 0x02;
/**
 * v2: the batch starts right after the gateway's confirmed cursor: every seq below firstSeq was
 * confirmed to this gateway by the city before (or by the broker, where the city sends no
 * acknowledgement). A receiver whose database does not know that yet (a new database, a gateway
 * updated from a release without end-to-end acknowledgement) takes it as its starting point.
 */
export const FLAG_FROM_CONFIRMED = 0x04;
/**
 * The gateway asks for the city's ack without the receiver's pacing (docs/protocol.md, "End-to-end
 * acknowledgement"): it is draining a backlog or sending again, or its confirmation lags.
 */
export const FLAG_PROMPT_ACK = 0x08;
/** The gateway reads compact (binary) acks: the receiver may send those instead of JSON. */
export const FLAG_COMPACT_ACK = 0x10;
const V2_FLAGS = FLAG_DEFLATE | FLAG_EPOCH_HEX | FLAG_FROM_CONFIRMED | FLAG_PROMPT_ACK | FLAG_COMPACT_ACK;

/** Decoded bodies larger than this are refused: a few kB of deflate can inflate to gigabytes. */
export const DEFAULT_MAX_INFLATED = 16 * 1024 * 1024;
const MAX_NAME_BYTES = 1024;
const MAX_STRING_VALUE_BYTES = 65_536;

export const KIND_NULL = 0;
export const KIND_REPEAT = 1;
/** kinds 2..8: decimal with k = kind - 2 fraction digits */
export const KIND_DECIMAL0 = 2;
export const MAX_DECIMALS = 6;
export const KIND_F32 = 9;
export const KIND_F64 = 10;
export const KIND_STRING = 11;

/** Scaled integers stay below this so that a delta of two of them is still a safe integer. */
const MAX_SCALED = 2 ** 50;
const POW10 = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000];
const HEX_EPOCH = /^(?:[0-9a-f]{2})+$/;
/** |ts| and ts steps stay below this so their zig-zag form is a safe integer (year ±140,000). */
const MAX_TS_STEP = 2 ** 52 - 1;

export interface EncodeOptions {
  /** deflate level 1..9 (default 9: live messages are small); 0 never compresses */
  level?: number;
}

export interface DecodeOptions {
  /** refuse bodies that inflate beyond this many bytes (default 16 MiB) */
  maxInflatedBytes?: number;
  /**
   * The gateway id of the topic the message came on. Version 2 does not repeat it in the payload
   * (the topic names it), so it is required there; version 1 carries its own.
   */
  gateway?: string;
}

export interface SeriesName {
  device: string;
  point: string;
  unit: string | null;
}

/**
 * A batch as columns, one entry per reading: what the encoder works on. The sync agent builds it
 * straight from the store's columns, without an object per reading.
 */
export interface TelemetryColumns {
  epoch: string;
  firstSeq: number;
  lastSeq: number;
  count: number;
  /** seq of each reading, increasing; null when they are firstSeq, firstSeq + 1, … (no holes) */
  seqs: ArrayLike<number> | null;
  /** a series key per reading (any integer ≥ 0); `names` resolves it */
  series: ArrayLike<number>;
  names: (key: number) => SeriesName;
  /** wall ms */
  ts: ArrayLike<number>;
  /** index in QUALITIES */
  quality: ArrayLike<number>;
  values: ArrayLike<number | string | null>;
  /**
   * Optional: how each number is held, values[i] === scaled[i] / 10^decimals[i] where
   * decimals[i] ≥ 0 (ReadingColumns). Checked per reading, so a wrong hint costs a search, not
   * a wrong value.
   */
  decimals?: ArrayLike<number>;
  scaled?: ArrayLike<number>;
  /** sets FLAG_FROM_CONFIRMED: every seq below firstSeq is confirmed to the gateway */
  fromConfirmed?: boolean;
  /** sets FLAG_PROMPT_ACK: ack this at once, not at the receiver's pace */
  promptAck?: boolean;
  /** sets FLAG_COMPACT_ACK: this gateway reads compact acks */
  compactAck?: boolean;
}

// ---- writer -----------------------------------------------------------------------------------

/**
 * One reusable output buffer (encoding is synchronous): no allocation per message beyond the
 * result, and varints written inline (bit operations below 2^31, arithmetic above).
 */
let out = Buffer.allocUnsafe(0);
let pos = 0;
/** A buffer grown beyond this by a huge batch is let go after it, not kept for the process's life. */
const KEEP_BYTES = 1024 * 1024;

function ensure(n: number): void {
  if (pos + n <= out.length) return;
  let size = Math.max(16 * 1024, out.length * 2);
  while (size < pos + n) size *= 2;
  const next = Buffer.allocUnsafe(size);
  out.copy(next, 0, 0, pos);
  out = next;
}

/** n: a safe integer ≥ 0 (callers check); room for 8 bytes must be ensured. */
function uv(n: number): void {
  if (n < 0x80) {
    out[pos++] = n;
    return;
  }
  if (n < 0x80000000) {
    while (n >= 0x80) {
      out[pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    out[pos++] = n;
    return;
  }
  while (n >= 0x80) {
    out[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[pos++] = n;
}

/**
 * The zig-zag varint of d at o[w] (o is `out`, with room); returns the position after it. Called
 * once per column value by the hot… loops, which the optimizing compiler inlines it into.
 */
function hotSvAt(o: Buffer, w: number, d: number): number {
  const z = d >= 0 ? d * 2 : -d * 2 - 1;
  if (z < 0x80) {
    o[w] = z;
    return w + 1;
  }
  pos = w;
  uv(z);
  return pos;
}

function sv(n: number): void {
  uv(n >= 0 ? n * 2 : -n * 2 - 1);
}

function str(s: string): void {
  if (hotUtf8(s, 0)) return;
  const len = Buffer.byteLength(s, 'utf8');
  ensure(len + 8);
  uv(len);
  pos += out.write(s, pos, 'utf8');
}

/** A unit: 0 for none, else its UTF-8 length + 1, then the bytes. */
function unitStr(u: string | null): void {
  if (u === null) {
    ensure(1);
    out[pos++] = 0;
    return;
  }
  if (hotUtf8(u, 1)) return;
  const len = Buffer.byteLength(u, 'utf8');
  ensure(len + 8);
  uv(len + 1);
  pos += out.write(u, pos, 'utf8');
}

/**
 * Writes varint(UTF-8 length + lenOffset) and the UTF-8 bytes of s, encoding in place: a drain
 * message names hundreds of series, and Buffer's own write path (its argument checks, a call into
 * C++) cost more than the readings' columns. Returns false, having written nothing, for a string
 * with surrogates (characters beyond U+FFFF, or broken halves): Buffer's encoder handles those.
 */
function hotUtf8(s: string, lenOffset: number): boolean {
  const n = s.length;
  ensure(n * 3 + 8);
  const o = out;
  const start = pos + 1; // most lengths take one varint byte
  let w = start;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) o[w++] = c;
    else if (c < 0x800) {
      o[w++] = 0xc0 | (c >> 6);
      o[w++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdfff) return false;
    else {
      o[w++] = 0xe0 | (c >> 12);
      o[w++] = 0x80 | ((c >> 6) & 0x3f);
      o[w++] = 0x80 | (c & 0x3f);
    }
  }
  const len = w - start + lenOffset;
  if (len < 0x80) {
    o[pos] = len;
    pos = w;
    return true;
  }
  let k = 1;
  for (let v = len; v >= 0x80; v = Math.floor(v / 0x80)) k++;
  o.copyWithin(pos + k, start, w);
  uv(len);
  pos += w - start;
  return true;
}

// ---- encoder ----------------------------------------------------------------------------------

/** Encodes a batch of reading objects (tests, tools, the bench); the agent uses encodeColumns. */
export function encodeTelemetry(batch: TelemetryBatch, opts: EncodeOptions = {}): Buffer {
  const { readings } = batch;
  const n = readings.length;
  const keys = new Map<string, number>();
  const names: SeriesName[] = [];
  const series = new Array<number>(n);
  const seqs = new Array<number>(n);
  const ts = new Array<number>(n);
  const quality = new Array<number>(n);
  const values = new Array<number | string | null>(n);
  for (let i = 0; i < n; i++) {
    const r: WireReading = readings[i]!;
    const key = `${r.device}\u0000${r.point}\u0000${r.unit === null ? '\u0001' : `\u0002${r.unit}`}`;
    let s = keys.get(key);
    if (s === undefined) {
      s = names.length;
      keys.set(key, s);
      names.push({ device: r.device, point: r.point, unit: r.unit });
    }
    series[i] = s;
    seqs[i] = r.seq;
    ts[i] = r.ts;
    const q = QUALITIES.indexOf(r.quality as Quality);
    if (q < 0) {
      throw new LangbiangError(
        'ENCODE_FAILED',
        `telemetry batch ${batch.firstSeq}..${batch.lastSeq}: seq ${r.seq}: unknown quality ${JSON.stringify(r.quality)}`,
      );
    }
    quality[i] = q;
    values[i] = r.value;
  }
  return encodeColumns(
    {
      epoch: batch.epoch,
      firstSeq: batch.firstSeq,
      lastSeq: batch.lastSeq,
      count: n,
      seqs,
      series,
      names: (k) => names[k]!,
      ts,
      quality,
      values,
    },
    opts,
  );
}

/**
 * Encodes a batch given as columns (version 2). Validates as it goes: seqs increasing inside
 * firstSeq..lastSeq, integer timestamps, known quality codes, values that are numbers, strings or
 * null. Throws ENCODE_FAILED.
 */
export function encodeColumns(c: TelemetryColumns, opts: EncodeOptions = {}): Buffer {
  const fail = (msg: string): never => {
    throw new LangbiangError('ENCODE_FAILED', `telemetry batch ${c.firstSeq}..${c.lastSeq}: ${msg}`);
  };
  const n = c.count;
  if (!Number.isSafeInteger(c.firstSeq) || c.firstSeq < 0) fail('firstSeq must be a safe non-negative integer');
  if (!Number.isSafeInteger(c.lastSeq) || c.lastSeq < c.firstSeq) fail('lastSeq must be >= firstSeq');
  if (n > c.lastSeq - c.firstSeq + 1) fail(`${n} readings do not fit in the seq span`);
  if (!c.seqs && n !== 0 && n !== c.lastSeq - c.firstSeq + 1) fail('readings without seqs must fill the seq span');

  // Series in order of first appearance, then grouped by device (device-major): a poll's points
  // then sit together in the name section, in the order the dictionary has them.
  // The loops that run once per reading are the hot… functions: the shipped gateway lets V8's
  // optimizing compiler at those alone (bin/langbiang.js); one-byte varints are written inline,
  // lookups go through typed arrays, and no call or allocation is made per reading where it can
  // be helped (the interpreter runs them until they are compiled).
  const firstOf = hotFirstAppearance(c.series, n);
  const order = firstOf.order;
  const fa = firstOf.index;
  const devices = new Map<string, { names: SeriesName[]; firsts: number[] }>();
  for (let f = 0; f < order.length; f++) {
    const name = c.names(order[f]!);
    let d = devices.get(name.device);
    if (!d) {
      d = { names: [], firsts: [] };
      devices.set(name.device, d);
    }
    d.names.push(name);
    d.firsts.push(f);
  }
  const local = new Int32Array(order.length);

  pos = 0;
  ensure(64);
  uv(c.firstSeq);
  uv(c.lastSeq - c.firstSeq);
  uv(n);
  const baseTs = n ? c.ts[0]! : 0;
  if (!Number.isSafeInteger(baseTs) || Math.abs(baseTs) > MAX_TS_STEP)
    fail(`seq ${c.firstSeq}: ts must be an integer number of ms`);
  sv(baseTs);
  uv(devices.size);
  let next = 0;
  for (const [device, d] of devices) {
    if (typeof device !== 'string') fail('device names must be strings');
    str(device);
    ensure(8);
    uv(d.names.length);
    for (let j = 0; j < d.names.length; j++) {
      const name = d.names[j]!;
      if (typeof name.point !== 'string') fail('point names must be strings');
      str(name.point);
      unitStr(name.unit);
      local[d.firsts[j]!] = next++;
    }
  }

  // series column: delta to the previous reading's series, minus one (a poll's run is all zeros)
  ensure(n * 5);
  const loc = hotSeriesColumn(fa, local, n);
  // seq column only when there are holes
  const seqs = c.seqs;
  if (n < c.lastSeq - c.firstSeq + 1) {
    ensure(n * 8);
    let prev = c.firstSeq - 1;
    for (let i = 0; i < n; i++) {
      const seq = seqs![i]!;
      if (!Number.isSafeInteger(seq) || seq <= prev) fail(`seq ${seq} is not increasing`);
      if (seq > c.lastSeq) fail(`seq ${seq} is after lastSeq`);
      uv(seq - prev - 1);
      prev = seq;
    }
  } else if (seqs) {
    for (let i = 0; i < n; i++) if (seqs[i] !== c.firstSeq + i) fail(`seq ${seqs[i]} is not increasing`);
  }
  ensure(n * 8);
  hotTsColumn(c, n, baseTs, fail);

  // The tag column is reserved here and filled in the same pass that writes the values after it.
  const tagStart = pos;
  ensure(n);
  pos += n;
  hotValueColumns(c, n, loc, order.length, tagStart, fail);
  const body = out.subarray(0, pos);

  const level = opts.level ?? 9;
  let flags = 0;
  let payload: Uint8Array = body;
  // Tiny bodies never win against deflate's own overhead; skip the attempt.
  if (level > 0 && body.length > 24) {
    const z = deflateRawSync(body, { level, memLevel: 9, dictionary: dictionaryV2() });
    if (z.length < body.length) {
      payload = z;
      flags |= FLAG_DEFLATE;
    }
  }
  const epochHex = c.epoch.length > 0 && c.epoch.length <= 128 && HEX_EPOCH.test(c.epoch);
  const epoch = epochHex ? Buffer.from(c.epoch, 'hex') : Buffer.from(c.epoch, 'utf8');
  if (epoch.length === 0 || epoch.length > MAX_NAME_BYTES) fail('epoch must be 1..1024 bytes');
  if (epochHex) flags |= FLAG_EPOCH_HEX;
  if (c.fromConfirmed) flags |= FLAG_FROM_CONFIRMED;
  if (c.promptAck) flags |= FLAG_PROMPT_ACK;
  if (c.compactAck) flags |= FLAG_COMPACT_ACK;
  const head = 2 + (epoch.length < 0x80 ? 1 : 2);
  const msg = Buffer.allocUnsafe(head + epoch.length + payload.length);
  msg[0] = NATIVE_VERSION;
  msg[1] = flags;
  let p = 2;
  if (epoch.length < 0x80) msg[p++] = epoch.length;
  else {
    msg[p++] = (epoch.length & 0x7f) | 0x80;
    msg[p++] = epoch.length >>> 7;
  }
  epoch.copy(msg, p);
  msg.set(payload, p + epoch.length);
  if (out.length > KEEP_BYTES) out = Buffer.allocUnsafe(0);
  return msg;
}

/**
 * Writes the series column (room ensured by the caller) and returns each reading's series index in
 * the name section.
 */
function hotSeriesColumn(fa: Int32Array, local: Int32Array, n: number): Int32Array {
  const loc = new Int32Array(n);
  const o = out;
  let w = pos;
  let prevS = -1;
  for (let i = 0; i < n; i++) {
    const s = local[fa[i]!]!;
    loc[i] = s;
    w = hotSvAt(o, w, s - prevS - 1);
    prevS = s;
  }
  pos = w;
  return loc;
}

/** Writes the timestamp column as steps from baseTs (room ensured by the caller), checking each. */
function hotTsColumn(c: TelemetryColumns, n: number, baseTs: number, fail: (msg: string) => never): void {
  const o = out;
  let w = pos;
  const tsCol = c.ts;
  let prevTs = baseTs;
  for (let i = 0; i < n; i++) {
    const t = tsCol[i]!;
    const d = t - prevTs;
    // an integer (NaN and ±Infinity fail the first test), a safe one, and a step that stays safe
    if (!(t % 1 === 0 && t <= MAX_TS_STEP && t >= -MAX_TS_STEP && d <= MAX_TS_STEP && d >= -MAX_TS_STEP)) {
      pos = w;
      const at = c.seqs ? c.seqs[i] : c.firstSeq + i;
      if (!Number.isSafeInteger(t)) fail(`seq ${at}: ts must be an integer number of ms`);
      fail(`seq ${at}: ts step too large`);
    }
    w = hotSvAt(o, w, d);
    prevTs = t;
  }
  pos = w;
}

/**
 * Each series key's index in order of first appearance. Keys are small integers in practice (the
 * store's series ids): a typed-array table then, reused across calls and told apart by a
 * generation number; a Map for any other key.
 */
/** the tables stay at most 2 × 256 KiB for the life of the process; larger keys go to a Map */
const SMALL_KEYS = 1 << 16;
let slotGen = new Int32Array(0);
let slotIdx = new Int32Array(0);
let generation = 0;

function hotFirstAppearance(keys: ArrayLike<number>, n: number): { order: number[]; index: Int32Array } {
  const order: number[] = [];
  const index = new Int32Array(n);
  if (++generation > 0x7ffffff0) {
    generation = 1;
    slotGen.fill(0);
  }
  const gen = generation;
  let big: Map<number, number> | null = null;
  for (let i = 0; i < n; i++) {
    const key = keys[i]!;
    let f: number;
    if (key >>> 0 === key && key < SMALL_KEYS) {
      if (key >= slotGen.length) {
        let size = Math.max(1024, slotGen.length * 2);
        while (size <= key) size *= 2;
        const g = new Int32Array(size);
        g.set(slotGen);
        const x = new Int32Array(size);
        x.set(slotIdx);
        slotGen = g;
        slotIdx = x;
      }
      if (slotGen[key] === gen) f = slotIdx[key]!;
      else {
        f = order.length;
        order.push(key);
        slotGen[key] = gen;
        slotIdx[key] = f;
      }
    } else {
      big ??= new Map();
      const known = big.get(key);
      if (known === undefined) {
        f = order.length;
        order.push(key);
        big.set(key, f);
      } else f = known;
    }
    index[i] = f;
  }
  return { order, index };
}

/**
 * The smallest k ≤ MAX_DECIMALS with v = m / 10^k exactly (m an integer, |m| ≤ MAX_SCALED), trying
 * the series' current k first; sets `searchM`. -1 when there is none (−0, NaN, ±Infinity, other
 * fractions).
 */
let searchM = 0;
function decimalScale(v: number, current: number): number {
  // -0, NaN and ±Infinity have no scaled-integer form
  if (!Number.isFinite(v) || Object.is(v, -0)) return -1;
  if (current >= 0) {
    const m = Math.round(v * POW10[current]!);
    if (Math.abs(m) <= MAX_SCALED && m / POW10[current]! === v) {
      searchM = m;
      return current;
    }
  }
  for (let j = 0; j <= MAX_DECIMALS; j++) {
    const m = Math.round(v * POW10[j]!);
    if (Math.abs(m) > MAX_SCALED) break;
    if (m / POW10[j]! === v) {
      searchM = m;
      return j;
    }
  }
  return -1;
}

/**
 * The tag and value columns. Per series the decoder keeps the last value and, for decimals, its
 * scale k and scaled integer n: a value equal to the last is a REPEAT, a decimal of the same k is
 * sent as the difference of the scaled integers. Where the columns say how the store held a number
 * (decimals/scaled), that scale is taken (raised to the series' k when that is exact), not searched.
 */
function hotValueColumns(
  c: TelemetryColumns,
  n: number,
  loc: Int32Array,
  nSeries: number,
  tagStart: number,
  fail: (msg: string) => never,
): void {
  const values = c.values;
  const quality = c.quality;
  const hintK = c.decimals;
  const hintM = c.scaled;
  const nq = QUALITIES.length;
  // last non-decimal value of a series (strings, f32, f64), meaningful only while lastK < 0
  const lastVal: (number | string | undefined)[] = new Array(nSeries);
  // -1: the last value was not a decimal (or none yet)
  const lastK = new Int8Array(nSeries).fill(-1);
  const lastN = new Float64Array(nSeries);
  ensure(n * 8 + 16);
  let o = out;
  let p = pos;
  for (let i = 0; i < n; i++) {
    const q = quality[i]!;
    if (!(q >>> 0 === q && q < nq)) fail(`reading ${i}: unknown quality code ${q}`);
    const s = loc[i]!;
    const v = values[i]!;
    let kind: number;
    if (v === null) {
      kind = KIND_NULL;
    } else if (typeof v === 'number') {
      const sk = lastK[s]!;
      let k = -1;
      let m = 0;
      const hk = hintK !== undefined && hintM !== undefined ? hintK[i]! : -1;
      if (hk >= 0) {
        m = hintM![i]!;
        // trust, but check: the scale must give back exactly this value (and +0, not -0)
        if (
          hk <= MAX_DECIMALS &&
          m <= MAX_SCALED &&
          m >= -MAX_SCALED &&
          (hk === 0 ? m === v : m / POW10[hk]! === v) &&
          (m !== 0 || 1 / v > 0)
        ) {
          k = hk;
          if (sk > k) {
            // the series' own scale keeps the difference small
            const m2 = m * POW10[sk - k]!;
            if (m2 <= MAX_SCALED && m2 >= -MAX_SCALED && m2 / POW10[sk]! === v) {
              k = sk;
              m = m2;
            }
          }
        } else {
          k = decimalScale(v, sk);
          m = searchM;
        }
      } else if (!(sk < 0 && lastVal[s] !== undefined && Object.is(lastVal[s], v))) {
        // not known to be a decimal (and not a repeat of the last non-decimal): search
        k = decimalScale(v, sk);
        m = searchM;
      }
      if (k >= 0) {
        if (k === sk && m === lastN[s]) kind = KIND_REPEAT;
        else {
          kind = KIND_DECIMAL0 + k;
          p = hotSvAt(o, p, m - (k === sk ? lastN[s]! : 0));
          lastK[s] = k;
          lastN[s] = m;
        }
      } else if (sk < 0 && lastVal[s] !== undefined && Object.is(lastVal[s], v)) {
        kind = KIND_REPEAT;
      } else if (Object.is(Math.fround(v), v)) {
        kind = KIND_F32;
        p = o.writeFloatLE(v, p);
        lastK[s] = -1;
        lastVal[s] = v;
      } else {
        kind = KIND_F64;
        p = o.writeDoubleLE(v, p);
        lastK[s] = -1;
        lastVal[s] = v;
      }
    } else if (typeof v === 'string') {
      if (lastK[s]! < 0 && lastVal[s] === v) kind = KIND_REPEAT;
      else {
        kind = KIND_STRING;
        if (Buffer.byteLength(v) > MAX_STRING_VALUE_BYTES) fail(`reading ${i}: string value longer than 64 KiB`);
        pos = p;
        str(v);
        // str may have grown the buffer; numbers after it still need their 8 bytes each
        ensure((n - i) * 8 + 16);
        o = out;
        p = pos;
        lastVal[s] = v;
        lastK[s] = -1;
      }
    } else {
      pos = p;
      fail(`reading ${i}: value must be a number, a string or null`);
    }
    o[tagStart + i] = q | (kind! << 4);
  }
  pos = p;
}

// ---- decoder ----------------------------------------------------------------------------------

const WHAT = 'native telemetry';

function inflate(body: Uint8Array, max: number, dictionary?: Buffer): Uint8Array {
  try {
    return inflateRawSync(body, dictionary ? { maxOutputLength: max, dictionary } : { maxOutputLength: max });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE' || (err instanceof RangeError && /max|large/i.test(err.message))) {
      throw new LangbiangError('DECODE_FAILED', `${WHAT}: body inflates beyond ${max} bytes (refused)`);
    }
    throw new LangbiangError('DECODE_FAILED', `${WHAT}: body is not valid deflate-raw data`);
  }
}

export function decodeTelemetry(payload: Buffer | Uint8Array, opts: DecodeOptions = {}): TelemetryBatch {
  if (!(payload instanceof Uint8Array)) throw new LangbiangError('DECODE_FAILED', `${WHAT}: payload is not bytes`);
  if (payload.length < 2) throw new LangbiangError('DECODE_FAILED', `${WHAT}: truncated (${payload.length} bytes)`);
  const version = payload[0]!;
  if (!NATIVE_VERSIONS.includes(version)) {
    throw new LangbiangError(
      'DECODE_FAILED',
      `${WHAT}: encoding version ${version} is not supported (this receiver reads versions ${NATIVE_VERSIONS.join(' and ')})`,
      { version },
    );
  }
  const flags = payload[1]!;
  const known = version === 1 ? FLAG_DEFLATE : V2_FLAGS;
  if ((flags & ~known) !== 0)
    throw new LangbiangError('DECODE_FAILED', `${WHAT}: unknown flags 0x${flags.toString(16)}`);
  const max = opts.maxInflatedBytes ?? DEFAULT_MAX_INFLATED;
  if (version === 1) {
    let body: Uint8Array = payload.subarray(2);
    if (flags & FLAG_DEFLATE) body = inflate(body, max);
    else if (body.length > max)
      throw new LangbiangError('DECODE_FAILED', `${WHAT}: body larger than ${max} bytes (refused)`);
    return decodeV1(body);
  }

  if (opts.gateway === undefined || opts.gateway === '') {
    throw new LangbiangError(
      'DECODE_FAILED',
      `${WHAT}: version 2 names its gateway only in the topic; decode it with the topic's gateway id`,
    );
  }
  const h = new ByteReader(payload, WHAT);
  h.pos = 2;
  const epochLen = h.varint();
  if (epochLen === 0 || epochLen > MAX_NAME_BYTES) h.fail(`epoch of ${epochLen} bytes`);
  if (epochLen > h.remaining) h.fail('truncated epoch');
  const epoch = flags & FLAG_EPOCH_HEX ? Buffer.from(h.bytes(epochLen)).toString('hex') : h.utf8(epochLen);
  let body: Uint8Array = payload.subarray(h.pos);
  if (flags & FLAG_DEFLATE) body = inflate(body, max, dictionaryV2());
  else if (body.length > max)
    throw new LangbiangError('DECODE_FAILED', `${WHAT}: body larger than ${max} bytes (refused)`);
  const batch = decodeV2Body(body, opts.gateway, epoch);
  if (flags & FLAG_FROM_CONFIRMED) batch.fromConfirmed = true;
  if (flags & FLAG_PROMPT_ACK) batch.promptAck = true;
  if (flags & FLAG_COMPACT_ACK) batch.compactAck = true;
  return batch;
}

interface SeriesState {
  last: number | string | undefined;
  k: number;
  n: number;
}

/** Tags and values (the same in both versions): fills readings in place. */
function decodeValues(
  r: ByteReader,
  body: Uint8Array,
  count: number,
  colSeries: Int32Array | number[],
  series: SeriesName[],
  colSeq: number[],
  colTs: number[],
): WireReading[] {
  if (count > r.remaining) r.fail('truncated tag column');
  const tagStart = r.pos;
  r.pos += count;
  const state: SeriesState[] = series.map(() => ({ last: undefined, k: -1, n: 0 }));
  const readings: WireReading[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const tag = body[tagStart + i]!;
    const q = tag & 0x0f;
    const kind = tag >> 4;
    if (q >= QUALITIES.length) r.fail(`reading ${i} has unknown quality code ${q}`);
    const st = state[colSeries[i]!]!;
    let value: number | string | null;
    if (kind === KIND_NULL) {
      value = null;
    } else if (kind === KIND_REPEAT) {
      if (st.last === undefined) r.fail(`reading ${i} repeats a value its series has not had`);
      value = st.last as number | string;
    } else if (kind >= KIND_DECIMAL0 && kind <= KIND_DECIMAL0 + MAX_DECIMALS) {
      const k = kind - KIND_DECIMAL0;
      const n = r.svarint() + (st.k === k ? st.n : 0);
      if (!Number.isSafeInteger(n)) r.fail(`reading ${i} has a value beyond 2^53`);
      value = n / POW10[k]!;
      st.k = k;
      st.n = n;
      st.last = value;
    } else if (kind === KIND_F32) {
      value = r.f32();
      st.k = -1;
      st.last = value;
    } else if (kind === KIND_F64) {
      value = r.f64();
      st.k = -1;
      st.last = value;
    } else if (kind === KIND_STRING) {
      value = r.string(MAX_STRING_VALUE_BYTES);
      st.k = -1;
      st.last = value;
    } else {
      return r.fail(`reading ${i} has unknown value kind ${kind}`);
    }
    const s = series[colSeries[i]!]!;
    readings[i] = {
      seq: colSeq[i]!,
      device: s.device,
      point: s.point,
      ts: colTs[i]!,
      value,
      unit: s.unit,
      quality: QUALITIES[q]!,
    };
  }
  if (r.remaining !== 0) r.fail(`${r.remaining} bytes after the last value`);
  return readings;
}

function readTs(r: ByteReader, count: number, baseTs: number): number[] {
  const colTs: number[] = new Array(count);
  let prevTs = baseTs;
  for (let i = 0; i < count; i++) {
    prevTs += r.svarint();
    if (!Number.isSafeInteger(prevTs)) r.fail(`reading ${i} has a timestamp beyond 2^53`);
    colTs[i] = prevTs;
  }
  return colTs;
}

function readSeqs(r: ByteReader, count: number, firstSeq: number, lastSeq: number): number[] {
  const colSeq: number[] = new Array(count);
  let prevSeq = firstSeq - 1;
  for (let i = 0; i < count; i++) {
    prevSeq = prevSeq + r.varint() + 1;
    if (prevSeq > lastSeq) r.fail(`reading ${i} has seq ${prevSeq}, after lastSeq ${lastSeq}`);
    colSeq[i] = prevSeq;
  }
  return colSeq;
}

function decodeV2Body(body: Uint8Array, gateway: string, epoch: string): TelemetryBatch {
  const r = new ByteReader(body, WHAT);
  const firstSeq = r.varint();
  const span = r.varint();
  const lastSeq = firstSeq + span;
  if (!Number.isSafeInteger(lastSeq)) r.fail('lastSeq beyond 2^53');
  const count = r.varint();
  // Every reading costs at least 3 bytes (series, ts, tag): a larger count is a lie.
  if (count * 3 > r.remaining) r.fail(`count ${count} does not fit in ${r.remaining} bytes`);
  if (count > span + 1) r.fail(`count ${count} is more than the seq span ${firstSeq}..${lastSeq} holds`);
  const baseTs = r.svarint();
  const nDevices = r.varint();
  if (nDevices * 2 > r.remaining) r.fail(`${nDevices} devices do not fit`);
  const series: SeriesName[] = [];
  for (let d = 0; d < nDevices; d++) {
    const device = r.string(MAX_NAME_BYTES);
    const nPoints = r.varint();
    if (nPoints * 2 > r.remaining) r.fail(`${nPoints} points of ${device} do not fit`);
    for (let p = 0; p < nPoints; p++) {
      const point = r.string(MAX_NAME_BYTES);
      // a unit's length is stored + 1; 0 means no unit
      const u = r.varint();
      if (u - 1 > MAX_NAME_BYTES) r.fail(`unit of ${u - 1} bytes is longer than ${MAX_NAME_BYTES}`);
      series.push({ device, point, unit: u === 0 ? null : r.utf8(u - 1) });
    }
  }
  const nSeries = series.length;
  const colSeries = new Int32Array(count);
  let prevS = -1;
  for (let i = 0; i < count; i++) {
    const s = prevS + 1 + r.svarint();
    if (s < 0 || s >= nSeries) r.fail(`reading ${i} refers to series ${s} of ${nSeries}`);
    colSeries[i] = s;
    prevS = s;
  }
  let colSeq: number[];
  if (count === span + 1) {
    colSeq = new Array(count);
    for (let i = 0; i < count; i++) colSeq[i] = firstSeq + i;
  } else {
    colSeq = readSeqs(r, count, firstSeq, lastSeq);
  }
  const colTs = readTs(r, count, baseTs);
  const readings = decodeValues(r, body, count, colSeries, series, colSeq, colTs);
  return { v: 2, gateway, epoch, firstSeq, lastSeq, readings };
}

function decodeV1(body: Uint8Array): TelemetryBatch {
  const r = new ByteReader(body, WHAT);
  const gateway = r.string(MAX_NAME_BYTES);
  const epoch = r.string(MAX_NAME_BYTES);
  const firstSeq = r.varint();
  const span = r.varint();
  const lastSeq = firstSeq + span;
  if (!Number.isSafeInteger(lastSeq)) r.fail('lastSeq beyond 2^53');
  const count = r.varint();
  // Every reading costs at least 4 bytes (series, seq, ts, tag): a larger count is a lie.
  if (count * 4 > r.remaining) r.fail(`count ${count} does not fit in ${r.remaining} bytes`);
  if (count > span + 1) r.fail(`count ${count} is more than the seq span ${firstSeq}..${lastSeq} holds`);
  const baseTs = r.svarint();
  const nStrings = r.varint();
  if (nStrings > r.remaining) r.fail(`string table of ${nStrings} entries does not fit`);
  const strings: string[] = new Array(nStrings);
  for (let i = 0; i < nStrings; i++) strings[i] = r.string(MAX_NAME_BYTES);
  const nSeries = r.varint();
  if (nSeries * 3 > r.remaining) r.fail(`series table of ${nSeries} entries does not fit`);
  const series: SeriesName[] = new Array(nSeries);
  const str = (i: number, field: string): string => {
    if (i >= nStrings) r.fail(`${field} refers to string ${i} of ${nStrings}`);
    return strings[i]!;
  };
  for (let i = 0; i < nSeries; i++) {
    const device = str(r.varint(), 'device');
    const point = str(r.varint(), 'point');
    const u = r.varint();
    series[i] = { device, point, unit: u === 0 ? null : str(u - 1, 'unit') };
  }
  const colSeries: number[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const s = r.varint();
    if (s >= nSeries) r.fail(`reading ${i} refers to series ${s} of ${nSeries}`);
    colSeries[i] = s;
  }
  const colSeq = readSeqs(r, count, firstSeq, lastSeq);
  const colTs = readTs(r, count, baseTs);
  const readings = decodeValues(r, body, count, colSeries, series, colSeq, colTs);
  return { v: 1, gateway, epoch, firstSeq, lastSeq, readings };
}
