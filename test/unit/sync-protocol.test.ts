import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parseCommand } from '../../cloud-sync/protocol/command.js';
import { decodeEvents, encodeEvents } from '../../cloud-sync/protocol/events.js';
import { decodeTelemetry, encodeTelemetry, FLAG_DEFLATE, NATIVE_VERSION } from '../../cloud-sync/protocol/native.js';
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
  const pick = Math.floor(r() * 14);
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
    default:
      return Math.round(r() * 1000) / 100;
  }
}

function randomBatch(seed: number, n: number): TelemetryBatch {
  const r = rng(seed);
  const devices = ['soil-a1', 'meter', 'lamp-ngõ-3', 'd'];
  const points = ['moisture', 'temperature', 'voltage', 'status', 'relay_1'];
  const units: (string | null)[] = ['%', '°C', 'V', null, ''];
  let seq = 1 + Math.floor(r() * 1e9);
  const firstSeq = seq - Math.floor(r() * 3);
  let ts = 1_717_000_000_000 + Math.floor(r() * 1e6);
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
    seq += r() < 0.8 ? 1 : 1 + Math.floor(r() * 1000);
    ts += Math.floor((r() - 0.3) * 5000); // sometimes backwards
  }
  const lastSeq = readings.length ? readings[readings.length - 1]!.seq + Math.floor(r() * 2) : firstSeq;
  return { v: NATIVE_VERSION, gateway: 'dl-gw-0001', epoch: 'a'.repeat(32), firstSeq, lastSeq, readings };
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

describe('native telemetry encoding', () => {
  it('round-trips random batches exactly (strings, nulls, every quality, huge/negative/float values, seq holes)', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const batch = randomBatch(seed, 1 + (seed % 7) * 40);
      const wire = encodeTelemetry(batch);
      expect(wire[0]).toBe(NATIVE_VERSION);
      expectSame(batch, decodeTelemetry(wire));
      expectSame(batch, decodeTelemetry(encodeTelemetry(batch, { level: 0 })));
      expectSame(batch, decodeTelemetry(new Uint8Array(wire)));
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
    const batch: TelemetryBatch = { v: 1, gateway: 'g', epoch: 'e', firstSeq: 10, lastSeq: 23, readings };
    expectSame(batch, decodeTelemetry(encodeTelemetry(batch)));
  });

  it('round-trips an empty batch', () => {
    const batch: TelemetryBatch = { v: 1, gateway: 'g', epoch: 'e', firstSeq: 5, lastSeq: 9, readings: [] };
    expectSame(batch, decodeTelemetry(encodeTelemetry(batch)));
  });

  it('refuses to encode what it could not decode', () => {
    const base: TelemetryBatch = { v: 1, gateway: 'g', epoch: 'e', firstSeq: 1, lastSeq: 2, readings: [] };
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
  });

  describe('malformed input is a DECODE_FAILED error, never a crash', () => {
    const good = encodeTelemetry(randomBatch(7, 50), { level: 0 });
    const goodZ = encodeTelemetry(randomBatch(8, 200));
    expect(goodZ[1]! & FLAG_DEFLATE).toBe(FLAG_DEFLATE);
    const raw = (body: number[]) => Buffer.from([NATIVE_VERSION, 0, ...body]);
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
    const bomb = Buffer.concat([
      Buffer.from([NATIVE_VERSION, FLAG_DEFLATE]),
      deflateRawSync(Buffer.alloc(64 * 1024 * 1024)),
    ]);
    const cases: [string, Uint8Array, RegExp][] = [
      ['empty', Buffer.alloc(0), /truncated/],
      ['one byte', Buffer.from([1]), /truncated/],
      ['bad version', Buffer.from([9, 0, 0]), /version 9 is not supported/],
      ['unknown flag', Buffer.from([1, 0x80]), /unknown flags/],
      ['truncated body', good.subarray(0, good.length - 3), /truncated|bytes/],
      ['truncated compressed body', goodZ.subarray(0, goodZ.length - 10), /deflate|truncated/],
      ['trailing bytes', Buffer.concat([good, Buffer.from([0])]), /after the last value/],
      ['not deflate', Buffer.from([1, FLAG_DEFLATE, 0xff, 0xff, 0xff]), /deflate/],
      ['zip bomb', bomb, /inflates beyond/],
      ['string longer than the payload', raw([0x7f]), /truncated string/],
      ['overlong varint', raw([0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), /varint/],
      ['count larger than the payload', raw([0, 0, 1, 5, 0x80, 0x80, 0x01, 0]), /count/],
      ['count larger than the seq span', raw([0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), /seq span/],
      ['invalid UTF-8', raw([2, 0xc3, 0x28]), /UTF-8/],
      ['series refers to a missing string', one({ series: [0, 5, 0] }), /refers to string/],
      ['unknown quality', one({ tag: 0x0e }), /quality code/],
      ['unknown value kind', one({ tag: 0xf0 }), /value kind/],
      ['repeat without a previous value', one({ tag: 0x10 }), /repeats/],
      ['seq after lastSeq', one({ seq: 3 }), /after lastSeq/],
      ['series index out of range', one({ seriesIdx: 4 }), /refers to series/],
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
          decodeTelemetry(payload);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(LangbiangError);
        expect((err as LangbiangError).code).toBe('DECODE_FAILED');
        expect((err as Error).message).toMatch(re);
      });
    }

    it('survives every truncation and random byte flips of a real message', () => {
      const r = rng(99);
      for (const msg of [good, goodZ]) {
        for (let cut = 0; cut < msg.length; cut += 3) {
          expect(() => decodeTelemetry(msg.subarray(0, cut))).toThrow(LangbiangError);
        }
        for (let i = 0; i < 300; i++) {
          const copy = Buffer.from(msg);
          copy[2 + Math.floor(r() * (copy.length - 2))] = Math.floor(r() * 256);
          try {
            decodeTelemetry(copy);
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
