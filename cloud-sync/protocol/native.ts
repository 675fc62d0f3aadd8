import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { LangbiangError } from '../../gateway/core/errors.js';
import { QUALITIES, type Quality } from '../../gateway/core/reading.js';
import { ByteReader, ByteWriter } from './bytes.js';
import type { TelemetryBatch, WireReading } from './types.js';

/**
 * The native telemetry encoding, version 1 (docs/protocol.md is the specification; keep the two
 * in step). Made for cellular links: one message carries a batch, names travel once per message
 * in a string table, seqs and timestamps as deltas, values as per-series deltas of scaled
 * integers where that is exact, and the body is deflated when that makes it smaller.
 */
export const NATIVE_VERSION = 1;
export const FLAG_DEFLATE = 0x01;

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

export interface EncodeOptions {
  /** deflate level 1..9 (default 6); 0 never compresses */
  level?: number;
}

export interface DecodeOptions {
  /** refuse bodies that inflate beyond this many bytes (default 16 MiB) */
  maxInflatedBytes?: number;
}

interface SeriesState {
  last: number | string | undefined;
  k: number;
  n: number;
}

/** Smallest k (0..6) with n / 10^k === v exactly, or null. */
function decimalOf(v: number): { k: number; n: number } | null {
  // -0 has no integer form; it travels as f32 so the receiver gets the same double back.
  if (Object.is(v, -0)) return null;
  for (let k = 0; k <= MAX_DECIMALS; k++) {
    const n = Math.round(v * POW10[k]!);
    if (Math.abs(n) > MAX_SCALED) return null;
    if (Object.is(n / POW10[k]!, v)) return { k, n };
  }
  return null;
}

export function encodeTelemetry(batch: TelemetryBatch, opts: EncodeOptions = {}): Buffer {
  const fail = (msg: string): never => {
    throw new LangbiangError('ENCODE_FAILED', `telemetry batch ${batch.firstSeq}..${batch.lastSeq}: ${msg}`);
  };
  const { readings } = batch;
  if (!Number.isSafeInteger(batch.firstSeq) || batch.firstSeq < 0) fail('firstSeq must be a safe non-negative integer');
  if (!Number.isSafeInteger(batch.lastSeq) || batch.lastSeq < batch.firstSeq) fail('lastSeq must be >= firstSeq');

  const strings = new Map<string, number>();
  const stringList: string[] = [];
  const intern = (s: string): number => {
    let i = strings.get(s);
    if (i === undefined) {
      i = stringList.length;
      strings.set(s, i);
      stringList.push(s);
    }
    return i;
  };
  const seriesIdx = new Map<string, number>();
  const seriesList: [number, number, number][] = [];
  const colSeries: number[] = new Array(readings.length);
  for (let i = 0; i < readings.length; i++) {
    const r = readings[i]!;
    const key = `${r.device}\u0000${r.point}\u0000${r.unit === null ? '\u0001' : `\u0002${r.unit}`}`;
    let s = seriesIdx.get(key);
    if (s === undefined) {
      s = seriesList.length;
      seriesIdx.set(key, s);
      seriesList.push([intern(r.device), intern(r.point), r.unit === null ? 0 : intern(r.unit) + 1]);
    }
    colSeries[i] = s;
  }

  const w = new ByteWriter(64 + readings.length * 8);
  w.string(batch.gateway);
  w.string(batch.epoch);
  w.varint(batch.firstSeq);
  w.varint(batch.lastSeq - batch.firstSeq);
  w.varint(readings.length);
  const baseTs = readings.length ? Math.trunc(readings[0]!.ts) : 0;
  w.svarint(baseTs);
  w.varint(stringList.length);
  for (const s of stringList) w.string(s);
  w.varint(seriesList.length);
  for (const [d, p, u] of seriesList) {
    w.varint(d);
    w.varint(p);
    w.varint(u);
  }
  // Columns: like values sit together, which is what makes deflate effective on them.
  for (const s of colSeries) w.varint(s);
  let prevSeq = batch.firstSeq - 1;
  for (const r of readings) {
    if (!Number.isSafeInteger(r.seq) || r.seq <= prevSeq) fail(`seq ${r.seq} is not increasing`);
    if (r.seq > batch.lastSeq) fail(`seq ${r.seq} is after lastSeq`);
    w.varint(r.seq - prevSeq - 1);
    prevSeq = r.seq;
  }
  let prevTs = baseTs;
  for (const r of readings) {
    if (!Number.isSafeInteger(r.ts)) fail(`seq ${r.seq}: ts must be an integer number of ms`);
    w.svarint(r.ts - prevTs);
    prevTs = r.ts;
  }
  const state: SeriesState[] = seriesList.map(() => ({ last: undefined, k: -1, n: 0 }));
  const tags = Buffer.allocUnsafe(readings.length);
  const values = new ByteWriter(readings.length * 2 + 16);
  for (let i = 0; i < readings.length; i++) {
    const r = readings[i]!;
    const q = QUALITIES.indexOf(r.quality as Quality);
    if (q < 0) fail(`seq ${r.seq}: unknown quality ${JSON.stringify(r.quality)}`);
    const st = state[colSeries[i]!]!;
    const v = r.value;
    let kind: number;
    if (v === null) {
      kind = KIND_NULL;
    } else if (st.last !== undefined && Object.is(st.last, v)) {
      kind = KIND_REPEAT;
    } else if (typeof v === 'string') {
      kind = KIND_STRING;
      if (Buffer.byteLength(v) > MAX_STRING_VALUE_BYTES) fail(`seq ${r.seq}: string value longer than 64 KiB`);
      values.string(v);
      st.last = v;
      st.k = -1;
    } else if (typeof v === 'number') {
      const d = decimalOf(v);
      if (d) {
        kind = KIND_DECIMAL0 + d.k;
        values.svarint(d.n - (st.k === d.k ? st.n : 0));
        st.k = d.k;
        st.n = d.n;
      } else if (Object.is(Math.fround(v), v)) {
        kind = KIND_F32;
        values.f32(v);
        st.k = -1;
      } else {
        kind = KIND_F64;
        values.f64(v);
        st.k = -1;
      }
      st.last = v;
    } else {
      return fail(`seq ${r.seq}: value must be a number, a string or null`);
    }
    tags[i] = q | (kind << 4);
  }
  w.bytes(tags);
  w.bytes(values.finish());
  const body = w.finish();

  const level = opts.level ?? 6;
  let flags = 0;
  let out = body;
  // Tiny bodies never win against deflate's own overhead; skip the attempt.
  if (level > 0 && body.length > 48) {
    const z = deflateRawSync(body, { level });
    if (z.length < body.length) {
      out = z;
      flags |= FLAG_DEFLATE;
    }
  }
  const msg = Buffer.allocUnsafe(2 + out.length);
  msg[0] = NATIVE_VERSION;
  msg[1] = flags;
  out.copy(msg, 2);
  return msg;
}

export function decodeTelemetry(payload: Buffer | Uint8Array, opts: DecodeOptions = {}): TelemetryBatch {
  const what = 'native telemetry';
  if (!(payload instanceof Uint8Array)) throw new LangbiangError('DECODE_FAILED', `${what}: payload is not bytes`);
  if (payload.length < 2) throw new LangbiangError('DECODE_FAILED', `${what}: truncated (${payload.length} bytes)`);
  const version = payload[0]!;
  if (version !== NATIVE_VERSION) {
    throw new LangbiangError(
      'DECODE_FAILED',
      `${what}: encoding version ${version} is not supported (this receiver reads version ${NATIVE_VERSION})`,
      { version },
    );
  }
  const flags = payload[1]!;
  if ((flags & ~FLAG_DEFLATE) !== 0)
    throw new LangbiangError('DECODE_FAILED', `${what}: unknown flags 0x${flags.toString(16)}`);
  const max = opts.maxInflatedBytes ?? DEFAULT_MAX_INFLATED;
  let body: Uint8Array = payload.subarray(2);
  if (flags & FLAG_DEFLATE) {
    try {
      body = inflateRawSync(body, { maxOutputLength: max });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_BUFFER_TOO_LARGE' || (err instanceof RangeError && /max|large/i.test(err.message))) {
        throw new LangbiangError('DECODE_FAILED', `${what}: body inflates beyond ${max} bytes (refused)`);
      }
      throw new LangbiangError('DECODE_FAILED', `${what}: body is not valid deflate-raw data`);
    }
  } else if (body.length > max) {
    throw new LangbiangError('DECODE_FAILED', `${what}: body larger than ${max} bytes (refused)`);
  }

  const r = new ByteReader(body, what);
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
  const series: { device: string; point: string; unit: string | null }[] = new Array(nSeries);
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
  const colSeq: number[] = new Array(count);
  let prevSeq = firstSeq - 1;
  for (let i = 0; i < count; i++) {
    prevSeq = prevSeq + r.varint() + 1;
    if (prevSeq > lastSeq) r.fail(`reading ${i} has seq ${prevSeq}, after lastSeq ${lastSeq}`);
    colSeq[i] = prevSeq;
  }
  const colTs: number[] = new Array(count);
  let prevTs = baseTs;
  for (let i = 0; i < count; i++) {
    prevTs += r.svarint();
    if (!Number.isSafeInteger(prevTs)) r.fail(`reading ${i} has a timestamp beyond 2^53`);
    colTs[i] = prevTs;
  }
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
  return { v: NATIVE_VERSION, gateway, epoch, firstSeq, lastSeq, readings };
}
