import { describe, expect, it } from 'vitest';
import {
  decodeTelemetry,
  encodeColumns,
  type SeriesName,
  type TelemetryColumns,
} from '../../cloud-sync/protocol/native.js';
import { QUALITIES } from '../../gateway/core/reading.js';
import { BatchEncoder, ColumnBuilder, hotDecodeColumns, type RawRow } from '../../gateway/store/batch-codec.js';
import { seededRandom } from '../helpers/seeded-random.js';

// The drain's fast path: the store decodes its packed batches into typed columns that say how it
// held each number (decimals/scaled), and the wire encoder takes that scale instead of searching.
// The hinted path must give the same bytes as the plain one, and a wrong hint must never give a
// wrong value.

const rng = seededRandom;

const NAMES: SeriesName[] = [
  { device: 'nha-kinh-1', point: 'soil_moisture', unit: '%' },
  { device: 'nha-kinh-1', point: 'Nhiệt độ', unit: '°C' },
  { device: 'đèn-đường-07', point: 'relay_1', unit: null },
  { device: 'meter', point: 'energy', unit: 'kWh' },
  { device: 'meter', point: 'firmware', unit: null },
  // a name past 127 bytes (a two-byte length) and one with a character beyond U+FFFF
  { device: 'd'.repeat(70), point: 'điểm-'.repeat(20), unit: 'm³/h' },
  { device: 'emoji', point: 'nắng 🌞', unit: '🌡' },
];

/** Store-like rows: sensor decimals that change scale, integers, floats, strings, nulls, repeats. */
function storeRows(seed: number, n: number): RawRow[] {
  const r = rng(seed);
  const rows: RawRow[] = [];
  let ts = 1_764_000_000_000;
  const last: (number | string | null)[] = NAMES.map(() => null);
  for (let i = 0; i < n; i++) {
    const series = Math.floor(r() * NAMES.length);
    ts += Math.floor(r() * 3) * 500;
    const pick = r();
    let value: number | string | null;
    if (pick < 0.2 && last[series] !== null) value = last[series]!;
    else if (pick < 0.25) value = null;
    else if (pick < 0.3) value = `v1.${Math.floor(r() * 4)}`;
    else if (pick < 0.35)
      value = r() * 1e6; // a float that no scale holds
    else if (pick < 0.4) value = Math.floor(r() * 2 ** 40) - 2 ** 39;
    else if (pick < 0.42)
      value = 2 ** 51 + Math.floor(r() * 1000); // beyond the wire's scaled range
    else {
      const k = Math.floor(r() * 5);
      value = Math.round((r() * 2000 - 1000) * 10 ** k) / 10 ** k;
    }
    if (value !== null) last[series] = value;
    rows.push({
      seq: 0,
      series,
      ts,
      mono: ts - 1_764_000_000_000,
      value,
      quality: Math.floor(r() * QUALITIES.length),
      flags: 0,
      boot: 1,
    });
  }
  return rows;
}

/** A whole stored batch into the columns, as the store's drain read does. */
function decodeInto(cols: ColumnBuilder, firstSeq: number, data: Uint8Array): void {
  cols.reserve(Math.ceil(data.length / 4)); // a reading takes 4 bytes at least
  hotDecodeColumns(firstSeq, data, cols, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
}

function columnsFrom(rows: RawRow[]): ColumnBuilder {
  const enc = new BatchEncoder();
  const cols = new ColumnBuilder();
  // several stored batches into one builder: it grows past its first room
  for (let at = 0; at < rows.length; at += 97) {
    const data = Buffer.from(encodeBatch(enc, rows.slice(at, at + 97)));
    decodeInto(cols, 1000 + at, data);
  }
  return cols;
}

function encodeBatch(enc: BatchEncoder, rows: RawRow[]): Buffer {
  enc.reset();
  for (const row of rows) enc.add(row);
  return enc.finish();
}

function wire(cols: ColumnBuilder, hints: boolean, series: ArrayLike<number> = cols.series): Buffer {
  const n = cols.count;
  const c: TelemetryColumns = {
    epoch: 'ab12',
    firstSeq: 1000,
    lastSeq: 1000 + n - 1,
    count: n,
    seqs: null,
    series: series,
    names: (k) => NAMES[k % NAMES.length]!,
    ts: cols.ts,
    quality: cols.quality,
    values: cols.values,
    promptAck: true,
  };
  if (hints) {
    c.decimals = cols.decimals;
    c.scaled = cols.scaled;
  }
  return encodeColumns(c, { level: 6 });
}

describe('the drain fast path: store columns → wire', () => {
  it('the store columns carry each value with its scale, exactly', () => {
    const rows = storeRows(7, 1500);
    const cols = columnsFrom(rows);
    expect(cols.count).toBe(rows.length);
    expect(cols.seqs.length).toBeGreaterThanOrEqual(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const v = rows[i]!.value;
      expect(cols.values[i]).toEqual(v);
      expect(cols.seqs[i]).toBe(1000 + i);
      expect(cols.ts[i]).toBe(rows[i]!.ts);
      const k = cols.decimals[i]!;
      if (typeof v === 'number' && k >= 0) expect(cols.scaled[i]! / 10 ** k).toBe(v);
      if (typeof v !== 'number') expect(k).toBe(-1);
    }
  });

  it('hinted and plain encodings are the same bytes, and decode to exactly the values', () => {
    for (let seed = 1; seed <= 25; seed++) {
      const cols = columnsFrom(storeRows(seed, 200 + seed * 37));
      const hinted = wire(cols, true);
      expect(hinted.equals(wire(cols, false))).toBe(true);
      const b = decodeTelemetry(hinted, { gateway: 'gw' });
      expect(b.readings.length).toBe(cols.count);
      b.readings.forEach((r, i) => {
        expect(Object.is(r.value, cols.values[i])).toBe(true);
        expect(r.ts).toBe(cols.ts[i]);
        expect(r.quality).toBe(QUALITIES[cols.quality[i]!]);
        const name = NAMES[cols.series[i]!]!;
        expect([r.device, r.point, r.unit]).toEqual([name.device, name.point, name.unit]);
      });
    }
  });

  it('a wrong hint costs a search, never a wrong value', () => {
    const cols = columnsFrom(storeRows(99, 800));
    const r = rng(5);
    for (let i = 0; i < cols.count; i++) {
      const pick = r();
      if (pick < 0.3)
        cols.decimals[i] = Math.floor(r() * 9) - 1; // any k, -1..7
      else if (pick < 0.6) cols.scaled[i] = cols.scaled[i]! + 1;
      else if (pick < 0.7) cols.scaled[i] = 2 ** 60;
    }
    const b = decodeTelemetry(wire(cols, true), { gateway: 'gw' });
    b.readings.forEach((x, i) => {
      expect(Object.is(x.value, cols.values[i])).toBe(true);
    });
  });

  it('series keys beyond the lookup table, and -0, NaN and infinities, still round-trip', () => {
    const cols = columnsFrom(storeRows(3, 300));
    cols.values[0] = -0;
    cols.decimals[0] = 0;
    cols.scaled[0] = 0;
    cols.values[1] = Number.NaN;
    cols.values[2] = Number.POSITIVE_INFINITY;
    const big = Array.from(cols.series.subarray(0, cols.count), (s) => (s % 2 ? 2 ** 31 + s : s));
    const b = decodeTelemetry(wire(cols, true, big), { gateway: 'gw' });
    b.readings.forEach((x, i) => {
      expect(Object.is(x.value, cols.values[i])).toBe(true);
      const name = NAMES[big[i]! % NAMES.length]!;
      expect(x.point).toBe(name.point);
    });
  });

  it('keeps refusing what is not a reading: a timestamp that is not an integer, an unknown quality', () => {
    const cols = columnsFrom(storeRows(4, 50));
    cols.ts[10] = cols.ts[10]! + 0.5;
    expect(() => wire(cols, true)).toThrow(/seq 1010: ts must be an integer/);
    cols.ts[10] = cols.ts[10]! - 0.5;
    cols.ts[11] = 2 ** 60;
    expect(() => wire(cols, true)).toThrow(/seq 1011/);
    cols.ts[11] = cols.ts[12]!;
    cols.quality[20] = QUALITIES.length;
    expect(() => wire(cols, true)).toThrow(/reading 20: unknown quality/);
  });

  it("sends a value equal to its series' last one as a repeat: no value bytes", () => {
    const bodyLength = (values: number[]) => {
      const cols = columnsFrom(
        values.map((value, i) => ({
          seq: 0,
          series: 0,
          ts: 1000 * i,
          mono: 1000 * i,
          value,
          quality: 0,
          flags: 0,
          boot: 1,
        })),
      );
      const n = cols.count;
      const c: TelemetryColumns = {
        epoch: 'ab12',
        firstSeq: 1000,
        lastSeq: 999 + n,
        count: n,
        seqs: null,
        series: cols.series.subarray(0, n),
        names: () => NAMES[0]!,
        ts: cols.ts,
        quality: cols.quality,
        values: cols.values,
        decimals: cols.decimals,
        scaled: cols.scaled,
      };
      return encodeColumns(c, { level: 0 }).length; // no deflate: the bytes of the columns themselves
    };
    const same = Array.from({ length: 100 }, () => 21.5);
    const steps = Array.from({ length: 100 }, (_, i) => (i % 2 ? 21.6 : 21.5));
    // each step of ±1 in the scaled integers costs one byte; each repeat none
    expect(bodyLength(steps) - bodyLength(same)).toBe(99);
  });

  it('a packed batch cut inside a number is an error, not a loop', () => {
    const enc = new BatchEncoder();
    const data = encodeBatch(enc, [
      { seq: 0, series: 3, ts: 5000, mono: 5000, value: 2 ** 40, quality: 0, flags: 0, boot: 1 },
    ]);
    // every cut after the version byte: inside the tag, the series, the times or the value
    for (let keep = 2; keep < data.length; keep++) {
      expect(() => decodeInto(new ColumnBuilder(), 1, data.subarray(0, keep))).toThrow(/truncated/);
    }
  });
});
