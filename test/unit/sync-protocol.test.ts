import { readFileSync } from 'node:fs';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parseCommand } from '../../cloud-sync/protocol/command.js';
import {
  buildDictionary,
  DICTIONARY_V2_ENTRIES,
  DICTIONARY_V2_SHA256,
  dictionaryV2,
  sha256Hex,
} from '../../cloud-sync/protocol/dictionary.js';
import { decodeEvents, encodeEvents } from '../../cloud-sync/protocol/events.js';
import {
  decodeTelemetry,
  encodeColumns,
  encodeTelemetry,
  FLAG_COMPACT_ACK,
  FLAG_DEFLATE,
  FLAG_EPOCH_HEX,
  FLAG_FROM_CONFIRMED,
  FLAG_PROMPT_ACK,
  NATIVE_VERSION,
} from '../../cloud-sync/protocol/native.js';
import { mqttPublishWireBytes, simulateLiveDay } from '../../cloud-sync/protocol/size.js';
import type { TelemetryBatch, WireReading } from '../../cloud-sync/protocol/types.js';
import { LangbiangError } from '../../gateway/core/errors.js';
import { QUALITIES } from '../../gateway/core/reading.js';

/** Deterministic PRNG (mulberry32): a failing case can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomValue(r: () => number): number | string | null {
  const pick = Math.floor(r() * 16);
  switch (pick) {
    case 0:
      return null;
    case 1:
      return ['on', '', 'Nhà kính 3 — ổn', '0012', 'x'.repeat(300)][Math.floor(r() * 5)]!;
    case 2:
      return Math.round((r() - 0.5) * 2e6) / 10; // one decimal
    case 3:
      return Math.floor((r() - 0.5) * 2 ** 53); // huge integers
    case 4:
      return (r() - 0.5) * 1e300; // f64
    case 5:
      return Math.fround(r() * 100); // exact f32
    case 6:
      return -0;
    case 7:
      return Number.MIN_VALUE;
    case 8:
      return -Math.round(r() * 1e6) / 1e6;
    case 9:
      return 2 ** 60;
    case 10:
      return 1e-7 * Math.round(r() * 100);
    case 11:
      return [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY][Math.floor(r() * 3)]!;
    case 12:
      return Math.round(r() * 10) / 10; // a series switching between 0, 1 and 2 decimals
    default:
      return Math.round(r() * 1000) / 100;
  }
}

const GW = 'dl-gw-0001';

function randomBatch(seed: number, n: number, epoch = 'a'.repeat(32)): TelemetryBatch {
  const r = rng(seed);
  const devices = ['soil-a1', 'meter', 'lamp-ngõ-3', 'd'];
  const points = ['moisture', 'temperature', 'voltage', 'status', 'relay_1'];
  const units: (string | null)[] = ['%', '°C', 'V', null, ''];
  let seq = 1 + Math.floor(r() * 1e9);
  const firstSeq = seq - Math.floor(r() * 3);
  let ts = 1_717_000_000_000 + Math.floor(r() * 1e6);
  const dense = seed % 3 === 0;
  const readings: WireReading[] = [];
  for (let i = 0; i < n; i++) {
    const p = Math.floor(r() * points.length);
    readings.push({
      seq,
      device: devices[Math.floor(r() * devices.length)]!,
      point: points[p]!,
      unit: units[p]!,
      ts,
      value: r() < 0.2 && readings.length ? readings[readings.length - 1]!.value : randomValue(r),
      quality: QUALITIES[Math.floor(r() * QUALITIES.length)]!,
    });
    seq += dense || r() < 0.8 ? 1 : 1 + Math.floor(r() * 1000);
    ts += Math.floor((r() - 0.3) * 5000); // sometimes backwards
  }
  const start = dense && readings.length ? readings[0]!.seq : firstSeq;
  const lastSeq = readings.length ? readings[readings.length - 1]!.seq + (dense ? 0 : Math.floor(r() * 2)) : start;
  return { v: NATIVE_VERSION, gateway: GW, epoch, firstSeq: start, lastSeq, readings };
}

function expectSame(a: TelemetryBatch, b: TelemetryBatch): void {
  expect(b.gateway).toBe(a.gateway);
  expect(b.epoch).toBe(a.epoch);
  expect(b.firstSeq).toBe(a.firstSeq);
  expect(b.lastSeq).toBe(a.lastSeq);
  expect(b.readings.length).toBe(a.readings.length);
  for (let i = 0; i < a.readings.length; i++) {
    const x = a.readings[i]!;
    const y = b.readings[i]!;
    expect(y).toEqual(x);
    // toEqual treats -0 and 0 alike only sometimes; the wire must keep the exact double.
    if (typeof x.value === 'number') expect(Object.is(x.value, y.value)).toBe(true);
  }
}

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** The walkthrough of docs/protocol.md: three readings, seq 1043 dropped. */
const WALKTHROUGH: TelemetryBatch = {
  v: 2,
  gateway: 'gw-1',
  epoch: '9f2c',
  firstSeq: 1041,
  lastSeq: 1044,
  readings: [
    { seq: 1041, device: 'soil-a1', point: 'moisture', ts: 1764168225000, value: 35.2, unit: '%', quality: 'good' },
    { seq: 1042, device: 'soil-a1', point: 'temperature', ts: 1764168225000, value: 22.4, unit: '°C', quality: 'good' },
    { seq: 1044, device: 'soil-a1', point: 'moisture', ts: 1764168230012, value: 35.3, unit: '%', quality: 'good' },
  ],
};

describe('native telemetry encoding (version 2)', () => {
  const dec = (p: Uint8Array) => decodeTelemetry(p, { gateway: GW });

  it('round-trips random batches exactly (strings, nulls, every quality, huge/negative/float values, seq holes)', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const batch = randomBatch(seed, 1 + (seed % 7) * 40, seed % 4 === 0 ? 'Epoch không hex' : 'a1'.repeat(16));
      const wire = encodeTelemetry(batch);
      expect(wire[0]).toBe(2);
      expect(wire[0]).toBe(NATIVE_VERSION);
      expectSame(batch, dec(wire));
      expectSame(batch, dec(encodeTelemetry(batch, { level: 0 })));
      expectSame(batch, dec(new Uint8Array(wire)));
    }
  });

  it('covers every quality and every value kind in one batch', () => {
    const values = [null, 1, 1, 2.5, 2.5, -3.25, 1e-6, 0.1234567, Math.fround(0.1), 1e300, 'a', 'a', -0, 2 ** 52];
    const readings: WireReading[] = values.map((value, i) => ({
      seq: 10 + i,
      device: 'd',
      point: 'p',
      unit: null,
      ts: 1000 + i,
      value,
      quality: QUALITIES[i % QUALITIES.length]!,
    }));
    const batch: TelemetryBatch = { v: 2, gateway: GW, epoch: 'e', firstSeq: 10, lastSeq: 23, readings };
    expectSame(batch, dec(encodeTelemetry(batch)));
  });

  it('round-trips an empty batch', () => {
    const batch: TelemetryBatch = { v: 2, gateway: GW, epoch: 'e', firstSeq: 5, lastSeq: 9, readings: [] };
    expectSame(batch, dec(encodeTelemetry(batch)));
  });

  it('encodes exactly the bytes of the docs walkthrough, and decodes them back', () => {
    const raw = hex(`02 02 02 9f 2c 91 08 03 03 d0 c3 f6 89 d8 66 01 07 73 6f 69 6c 2d 61 31 02 08 6d 6f 69 73 74 75
      72 65 02 25 0b 74 65 6d 70 65 72 61 74 75 72 65 04 c2 b0 43 00 00 03 00 00 01 00 00 a8 4e 30 30 30 c0 05 c0 03 02`);
    expect(encodeTelemetry(WALKTHROUGH, { level: 0 }).toString('hex')).toBe(raw.toString('hex'));
    expect(decodeTelemetry(raw, { gateway: 'gw-1' })).toEqual(WALKTHROUGH);
    const z = encodeTelemetry(WALKTHROUGH);
    expect(z[1]).toBe(FLAG_DEFLATE | FLAG_EPOCH_HEX);
    expect(z.length).toBe(47);
    expect(decodeTelemetry(z, { gateway: 'gw-1' })).toEqual(WALKTHROUGH);
  });

  it('sends the seq column only when the seqs have holes, and a hex epoch as raw bytes', () => {
    const dense: TelemetryBatch = {
      ...WALKTHROUGH,
      lastSeq: 1043,
      readings: WALKTHROUGH.readings.map((r, i) => ({ ...r, seq: 1041 + i })),
    };
    const holes = encodeTelemetry(WALKTHROUGH, { level: 0 });
    const noHoles = encodeTelemetry(dense, { level: 0 });
    expect(holes.length - noHoles.length).toBe(3);
    expect(decodeTelemetry(noHoles, { gateway: 'gw-1' })).toEqual(dense);
    const epoch = 'f3a9c2d4e5b60718293a4b5c6d7e8f90';
    const m = encodeTelemetry({ ...dense, epoch }, { level: 0 });
    expect(m.subarray(2, 19).toString('hex')).toBe(`10${epoch}`);
    expect(decodeTelemetry(m, { gateway: 'gw-1' }).epoch).toBe(epoch);
  });

  it('the column encoder (the sync agent path) writes the same bytes as the object encoder', () => {
    for (let seed = 3; seed <= 30; seed += 3) {
      const b = randomBatch(seed, 120);
      // store-like series ids: sparse, not in order of appearance
      const ids = new Map<string, number>();
      const names = new Map<number, { device: string; point: string; unit: string | null }>();
      const series = b.readings.map((r) => {
        const key = `${r.device}|${r.point}|${r.unit}`;
        let id = ids.get(key);
        if (id === undefined) {
          id = 1000 - 7 * ids.size;
          ids.set(key, id);
          names.set(id, { device: r.device, point: r.point, unit: r.unit });
        }
        return id;
      });
      const cols = encodeColumns({
        epoch: b.epoch,
        firstSeq: b.firstSeq,
        lastSeq: b.lastSeq,
        count: b.readings.length,
        seqs: b.readings.map((r) => r.seq),
        series,
        names: (id) => names.get(id)!,
        ts: b.readings.map((r) => r.ts),
        quality: b.readings.map((r) => QUALITIES.indexOf(r.quality)),
        values: b.readings.map((r) => r.value),
      });
      expect(cols.equals(encodeTelemetry(b))).toBe(true);
    }
  });

  it('refuses to encode what it could not decode', () => {
    const base: TelemetryBatch = { v: 2, gateway: 'g', epoch: 'e', firstSeq: 1, lastSeq: 2, readings: [] };
    const r = (o: Partial<WireReading>): WireReading => ({
      seq: 1,
      device: 'd',
      point: 'p',
      unit: null,
      ts: 1,
      value: 1,
      quality: 'good',
      ...o,
    });
    expect(() => encodeTelemetry({ ...base, readings: [r({ seq: 2 }), r({ seq: 2 })] })).toThrow(/not increasing/);
    expect(() => encodeTelemetry({ ...base, readings: [r({ seq: 3 })] })).toThrow(/after lastSeq/);
    expect(() => encodeTelemetry({ ...base, readings: [r({ quality: 'meh' as never })] })).toThrow(/unknown quality/);
    expect(() => encodeTelemetry({ ...base, readings: [r({ ts: 1.5 })] })).toThrow(/ts must be/);
    expect(() => encodeTelemetry({ ...base, readings: [r({ value: true as never })] })).toThrow(
      /number, a string or null/,
    );
    expect(() => encodeTelemetry({ ...base, epoch: '' })).toThrow(/epoch/);
  });

  it('carries the ack flags (PROMPT_ACK, COMPACT_ACK) beside FROM_CONFIRMED, each on its own bit, and refuses bits beyond', () => {
    const cols = (o: { fromConfirmed?: boolean; promptAck?: boolean; compactAck?: boolean }) =>
      encodeColumns({
        epoch: 'abcd',
        firstSeq: 5,
        lastSeq: 6,
        count: 2,
        seqs: null,
        series: [0, 0],
        names: () => ({ device: 'd', point: 'p', unit: null }),
        ts: [1000, 2000],
        quality: [0, 0],
        values: [1.5, 2.5],
        ...o,
      });
    const combos = [
      {},
      { promptAck: true },
      { compactAck: true },
      { fromConfirmed: true, promptAck: true, compactAck: true },
    ];
    for (const o of combos) {
      const msg = cols(o);
      expect(msg[1]! & FLAG_PROMPT_ACK).toBe('promptAck' in o ? FLAG_PROMPT_ACK : 0);
      expect(msg[1]! & FLAG_COMPACT_ACK).toBe('compactAck' in o ? FLAG_COMPACT_ACK : 0);
      expect(msg[1]! & FLAG_FROM_CONFIRMED).toBe('fromConfirmed' in o ? FLAG_FROM_CONFIRMED : 0);
      const b = decodeTelemetry(msg, { gateway: 'g' });
      expect([b.promptAck === true, b.compactAck === true, b.fromConfirmed === true]).toEqual([
        'promptAck' in o,
        'compactAck' in o,
        'fromConfirmed' in o,
      ]);
      expect(b.readings.map((r) => r.value)).toEqual([1.5, 2.5]);
    }
    const msg = cols({});
    msg[1] = msg[1]! | 0x20;
    expect(() => decodeTelemetry(msg, { gateway: 'g' })).toThrow(/unknown flags/);
  });

  it('needs the gateway of the topic: version 2 does not repeat it', () => {
    const m = encodeTelemetry(WALKTHROUGH);
    expect(() => decodeTelemetry(m)).toThrow(/topic's gateway id/);
    expect(decodeTelemetry(m, { gateway: 'dl-gw-0009' }).gateway).toBe('dl-gw-0009');
  });

  describe('the preset dictionary', () => {
    it('is the frozen list published in docs/telemetry-dictionary-v2.txt, with the pinned SHA-256', () => {
      const text = readFileSync(new URL('../../docs/telemetry-dictionary-v2.txt', import.meta.url), 'utf8');
      const entries = text
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith('#'))
        .map((l) => l.split('\t') as [string, string]);
      expect(entries).toEqual(DICTIONARY_V2_ENTRIES.map(([n, u]) => [n, u]));
      expect(sha256Hex(buildDictionary(entries))).toBe(DICTIONARY_V2_SHA256);
      expect(sha256Hex(dictionaryV2())).toBe('39161fb4ba959cbd65ff4c8a19b8c5905cb4277194fd2a23686f9568dfbdd1ad');
      expect(dictionaryV2().length).toBe(5830);
      expect(text).toContain(DICTIONARY_V2_SHA256);
    });

    it('is what the body is deflated against (without it the body does not inflate)', () => {
      const m = encodeTelemetry(WALKTHROUGH);
      const body = m.subarray(5);
      expect(() => inflateRawSync(body)).toThrow();
      expect(inflateRawSync(body, { dictionary: dictionaryV2() })).toEqual(
        encodeTelemetry(WALKTHROUGH, { level: 0 }).subarray(5),
      );
    });
  });

  describe('malformed input is a DECODE_FAILED error, never a crash', () => {
    const good = encodeTelemetry(randomBatch(7, 50), { level: 0 });
    const goodZ = encodeTelemetry(randomBatch(8, 200));
    expect(goodZ[1]! & FLAG_DEFLATE).toBe(FLAG_DEFLATE);
    // version 2, epoch "e" as text, then the body
    const raw = (body: number[], flags = 0) => Buffer.from([2, flags, 1, 0x65, ...body]);
    // One reading of seq 1 (span 0, count 1, baseTs 0), one device "d" with one point "p", no unit.
    const one = (o: { names?: number[]; series?: number; tag?: number; value?: number[]; count?: number }) =>
      raw([
        1,
        0,
        o.count ?? 1,
        0,
        ...(o.names ?? [1, 1, 0x64, 1, 1, 0x70, 0]),
        o.series ?? 0,
        0,
        o.tag ?? 0,
        ...(o.value ?? []),
      ]);
    const bomb = Buffer.concat([
      Buffer.from([2, FLAG_DEFLATE, 1, 0x65]),
      deflateRawSync(Buffer.alloc(64 * 1024 * 1024), { dictionary: dictionaryV2() }),
    ]);
    const cases: [string, Uint8Array, RegExp][] = [
      ['empty', Buffer.alloc(0), /truncated/],
      ['one byte', Buffer.from([2]), /truncated/],
      ['bad version', Buffer.from([9, 0, 0]), /version 9 is not supported/],
      ['unknown flag', Buffer.from([2, 0x80]), /unknown flags/],
      ['no epoch', Buffer.from([2, 0, 0]), /epoch of 0 bytes/],
      ['truncated epoch', Buffer.from([2, 0, 5, 0x65]), /truncated epoch/],
      ['truncated body', good.subarray(0, good.length - 3), /truncated|bytes/],
      ['truncated compressed body', goodZ.subarray(0, goodZ.length - 10), /deflate|truncated/],
      ['trailing bytes', Buffer.concat([good, Buffer.from([0])]), /after the last value/],
      ['not deflate', raw([0xff, 0xff, 0xff], FLAG_DEFLATE), /deflate/],
      ['zip bomb', bomb, /inflates beyond/],
      ['overlong varint', raw([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), /varint/],
      ['count larger than the payload', raw([0, 5, 0x80, 0x80, 0x01, 0]), /count/],
      ['count larger than the seq span', raw([0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), /seq span/],
      ['device name longer than the payload', one({ names: [1, 0x7f] }), /truncated string|do not fit/],
      ['invalid UTF-8 in a name', one({ names: [1, 2, 0xc3, 0x28, 1, 1, 0x70, 0] }), /UTF-8/],
      ['invalid UTF-8 in a unit', one({ names: [1, 1, 0x64, 1, 1, 0x70, 3, 0xc3, 0x28] }), /UTF-8/],
      ['more devices than bytes', one({ names: [0x7f] }), /do not fit/],
      ['unknown quality', one({ tag: 0x0e }), /quality code/],
      ['unknown value kind', one({ tag: 0xf0 }), /value kind/],
      ['repeat without a previous value', one({ tag: 0x10 }), /repeats/],
      ['series index out of range', one({ series: 4 }), /refers to series/],
      ['negative series index', one({ series: 1 }), /refers to series/],
      [
        'decimal beyond 2^53',
        one({ tag: 0x20, value: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f] }),
        /beyond 2\^53|larger than 2\^53/,
      ],
    ];
    for (const [name, payload, re] of cases) {
      it(name, () => {
        let err: unknown;
        try {
          dec(payload);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(LangbiangError);
        expect((err as LangbiangError).code).toBe('DECODE_FAILED');
        expect((err as Error).message).toMatch(re);
      });
    }

    it('a hand-made message of one reading decodes (the cases above differ from it in one field)', () => {
      const b = dec(one({ tag: 0x20, value: [0x54] }));
      expect(b.readings).toEqual([{ seq: 1, device: 'd', point: 'p', unit: null, ts: 0, value: 42, quality: 'good' }]);
    });

    it('survives every truncation and random byte flips of a real message', () => {
      const r = rng(99);
      for (const msg of [good, goodZ]) {
        for (let cut = 0; cut < msg.length; cut += 3) {
          expect(() => dec(msg.subarray(0, cut))).toThrow(LangbiangError);
        }
        for (let i = 0; i < 300; i++) {
          const copy = Buffer.from(msg);
          copy[2 + Math.floor(r() * (copy.length - 2))] = Math.floor(r() * 256);
          try {
            dec(copy);
          } catch (e) {
            expect(e).toBeInstanceOf(LangbiangError);
          }
        }
      }
    });
  });

  it('a day of live operation at the default batching costs at most 6 wire bytes per reading', () => {
    // 15 points polled every second (the DESIGN.md comparison), one hour simulated: steady state.
    const res = simulateLiveDay({ hours: 1 });
    console.log(
      `native: ${res.bytesPerReading.toFixed(2)} B/reading on the wire (${res.messages} messages, ` +
        `${res.readings} readings, payload ${res.payloadPerReading.toFixed(2)} B/reading)`,
    );
    expect(res.readings).toBeGreaterThan(50_000);
    expect(res.bytesPerReading).toBeLessThanOrEqual(6);
  });

  it('counts MQTT packet overhead the way the broker sees it', () => {
    // PUBLISH (1 fixed + remaining length + topic + packet id + property length) + PUBACK (4)
    expect(mqttPublishWireBytes(100, 'a/b')).toBe(1 + 1 + 2 + 3 + 2 + 1 + 100 + 4);
    expect(mqttPublishWireBytes(200, 'a/b')).toBe(1 + 2 + 2 + 3 + 2 + 1 + 200 + 4);
    // topic alias: the first message also carries the 3-byte property, later ones an empty topic
    expect(mqttPublishWireBytes(100, 'a/b', 'first')).toBe(1 + 1 + 2 + 3 + 2 + 1 + 3 + 100 + 4);
    expect(mqttPublishWireBytes(100, 'a/b', 'use')).toBe(1 + 1 + 2 + 0 + 2 + 1 + 3 + 100 + 4);
  });
});

describe('native telemetry version 1 (still decoded: gateways not yet updated send it)', () => {
  it('decodes the version 1 example of the protocol history', () => {
    // 83 bytes: gateway gw-1, epoch 9f2c, the three readings of the walkthrough, uncompressed
    const v1 = hex(`01 00 04 67 77 2d 31 04 39 66 32 63 91 08 03 03 d0 c3 f6 89 d8 66 05 07 73 6f 69 6c 2d 61 31
      08 6d 6f 69 73 74 75 72 65 01 25 0b 74 65 6d 70 65 72 61 74 75 72 65 03 c2 b0 43 02 00 01 03
      00 03 05 00 01 00 00 00 01 00 00 a8 4e 30 30 30 c0 05 c0 03 02`);
    expect(decodeTelemetry(v1)).toEqual({ ...WALKTHROUGH, v: 1 });
    expect(decodeTelemetry(deflatedV1(v1))).toEqual({ ...WALKTHROUGH, v: 1 });
  });

  function deflatedV1(m: Buffer): Buffer {
    return Buffer.concat([Buffer.from([1, FLAG_DEFLATE]), deflateRawSync(m.subarray(2))]);
  }

  describe('malformed version 1 input is a DECODE_FAILED error', () => {
    const raw = (body: number[]) => Buffer.from([1, 0, ...body]);
    // One reading, gateway "g", epoch "e", seq 1, string table ["d"], one series (d, d, no unit).
    const one = (o: { series?: number[]; seriesIdx?: number; seq?: number; tag?: number; value?: number[] }) =>
      raw([
        1,
        0x67,
        1,
        0x65,
        1,
        0,
        1,
        0,
        1,
        1,
        0x64,
        1,
        ...(o.series ?? [0, 0, 0]),
        o.seriesIdx ?? 0,
        o.seq ?? 0,
        0,
        o.tag ?? 0,
        ...(o.value ?? []),
      ]);
    const cases: [string, Uint8Array, RegExp][] = [
      ['unknown flag', Buffer.from([1, FLAG_EPOCH_HEX]), /unknown flags/],
      ['not deflate', Buffer.from([1, FLAG_DEFLATE, 0xff, 0xff, 0xff]), /deflate/],
      ['string longer than the payload', raw([0x7f]), /truncated string/],
      ['count larger than the payload', raw([0, 0, 1, 5, 0x80, 0x80, 0x01, 0]), /count/],
      ['series refers to a missing string', one({ series: [0, 5, 0] }), /refers to string/],
      ['unknown quality', one({ tag: 0x0e }), /quality code/],
      ['seq after lastSeq', one({ seq: 3 }), /after lastSeq/],
      ['series index out of range', one({ seriesIdx: 4 }), /refers to series/],
      ['trailing bytes', Buffer.concat([one({}), Buffer.from([0])]), /after the last value/],
    ];
    for (const [name, payload, re] of cases) {
      it(name, () => {
        expect(() => decodeTelemetry(payload)).toThrow(re);
        try {
          decodeTelemetry(payload);
        } catch (e) {
          expect((e as LangbiangError).code).toBe('DECODE_FAILED');
        }
      });
    }
    it('a hand-made version 1 message of one reading decodes', () => {
      expect(decodeTelemetry(one({})).readings).toEqual([
        { seq: 1, device: 'd', point: 'd', unit: null, ts: 0, value: null, quality: 'good' },
      ]);
    });
  });
});

describe('events payload', () => {
  it('round-trips and rejects wrong shapes', () => {
    const b = { v: 1, gateway: 'g', epoch: 'e', events: [{ id: 3, kind: 'gap', ts: 5, data: { count: 2 } }] };
    expect(decodeEvents(encodeEvents(b))).toEqual(b);
    expect(() => decodeEvents('nope')).toThrow(/not JSON/);
    expect(() => decodeEvents('{"v":2}')).toThrow(/version/);
    expect(() => decodeEvents(JSON.stringify({ ...b, events: [{ id: 0, kind: 'gap', ts: 1, data: {} }] }))).toThrow(
      /id/,
    );
    expect(() => decodeEvents(Buffer.alloc(2 * 1024 * 1024, 0x20))).toThrow(/bytes/);
  });
});

describe('cmd envelope', () => {
  it('accepts a good command and maps it to a CommandRequest from the city', () => {
    const p = parseCommand(
      JSON.stringify({ id: 'c1', device: 'valves', point: 'relay_1', value: true, deadline: '2030-01-01T00:00:00Z' }),
    );
    expect(p).toEqual({
      ok: true,
      request: {
        id: 'c1',
        device: 'valves',
        point: 'relay_1',
        value: true,
        source: 'mqtt',
        actor: 'city',
        deadline: Date.parse('2030-01-01T00:00:00Z'),
      },
    });
  });

  const cases: [string, string | Buffer, string | null, RegExp][] = [
    ['not JSON', '{oops', null, /not JSON/],
    ['not UTF-8', Buffer.from([0xff, 0xfe]), null, /UTF-8/],
    ['an array', '[1,2]', null, /not a JSON object/],
    ['missing id', '{"device":"d","point":"p","value":1}', null, /id is missing/],
    ['numeric id', '{"id":5,"device":"d","point":"p","value":1}', null, /id must be/],
    [
      'too big',
      JSON.stringify({ id: 'big', device: 'd', point: 'p', value: 'x'.repeat(17 * 1024) }),
      null,
      /more than the 16384/,
    ],
    ['missing value', '{"id":"c2","device":"d","point":"p"}', 'c2', /value is missing/],
    ['object value', '{"id":"c3","device":"d","point":"p","value":{}}', 'c3', /value must be/],
    ['empty device', '{"id":"c4","device":"","point":"p","value":1}', 'c4', /device must be/],
    ['bad deadline', '{"id":"c5","device":"d","point":"p","value":1,"deadline":"soon"}', 'c5', /deadline/],
    ['no deadline', '{"id":"c7","device":"d","point":"p","value":1}', 'c7', /deadline is missing/],
    [
      'an actor (the signing key is the actor)',
      '{"id":"c8","device":"d","point":"p","value":1,"deadline":5,"actor":"x"}',
      'c8',
      /unknown key "actor"/,
    ],
    ['unknown key', '{"id":"c6","device":"d","point":"p","value":1,"dedline":5}', 'c6', /unknown key "dedline"/],
  ];
  for (const [name, payload, id, re] of cases) {
    it(`rejects ${name}`, () => {
      const p = parseCommand(payload);
      expect(p.ok).toBe(false);
      if (!p.ok) {
        expect(p.id).toBe(id);
        expect(p.message).toMatch(re);
      }
    });
  }
});
