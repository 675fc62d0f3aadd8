import { describe, expect, it } from 'vitest';
import { COMPACT_ACK_VERSION, decodeAck, encodeAck, encodeCompactAck } from '../../cloud-sync/protocol/ack.js';
import type { StatusMessage } from '../../cloud-sync/protocol/status.js';
import { StatusPacer } from '../../cloud-sync/status-pacer.js';
import { LangbiangError } from '../../gateway/core/errors.js';

/** When the retained status is published, and the compact ack's round trip. */

const base: StatusMessage = {
  v: 1,
  gateway: 'dl-gw-0001',
  epoch: 'ab',
  state: 'online',
  ts: 0,
  version: '0.1.0',
  backlog: 12,
  oldestUnsentAgeS: 4,
  unconfirmed: 40,
  oldestUnconfirmedAgeS: 50,
  confirm: 'city',
};

const pacer = () =>
  new StatusPacer({ busyIntervalMs: 60_000, heartbeatMs: 900_000, sendLateMs: 60_000, confirmLateMs: 150_000 });

describe('StatusPacer', () => {
  it("an update's outcome goes at once: a release pending, then confirmed, refused or rolled back", () => {
    const p = pacer();
    const last = (outcome: string, at: string) => ({ previous: '0.0.9', last: { outcome, version: '0.1.1', at } });
    const steps: StatusMessage['update'][] = [
      { previous: '0.0.9', pending: { version: '0.1.1', attempts: 1 } },
      last('confirmed', '2026-12-06T10:00:00Z'),
      last('refused', '2026-12-06T11:00:00Z'),
      last('refused', '2026-12-06T12:00:00Z'),
    ];
    p.published(0, base, 0);
    let t = 1000;
    for (const update of steps) {
      const s = { ...base, update };
      expect(p.due(t, s, 0), JSON.stringify(update)).toBe(true);
      p.published(t, s, 0);
      expect(p.due(t + 1000, s, 0)).toBe(false);
      t += 2000;
    }
  });

  it('live operation: counters that move with every batch do not make a status; the heartbeat does', () => {
    const p = pacer();
    expect(p.due(0, base, 0)).toBe(true);
    p.published(0, base, 0);
    for (let t = 5000; t < 900_000; t += 5000) {
      const s = { ...base, backlog: t % 37, oldestUnsentAgeS: t % 29, unconfirmed: t % 101, oldestUnconfirmedAgeS: 90 };
      expect(p.due(t, s, 0)).toBe(false);
    }
    expect(p.due(900_000, base, 0)).toBe(true);
  });

  it('an update that ends goes at once (a city roll-out waits for it): pending confirmed, or rolled back', () => {
    const p = pacer();
    const onProbation: StatusMessage = {
      ...base,
      version: '1.4.0',
      update: { previous: '1.3.0', pending: { version: '1.4.0', attempts: 1 } },
    };
    p.published(0, onProbation, 0);
    expect(
      p.due(
        5000,
        { ...onProbation, update: { ...onProbation.update!, pending: { version: '1.4.0', attempts: 1 } } },
        0,
      ),
    ).toBe(false);
    const confirmed: StatusMessage = {
      ...onProbation,
      update: { previous: '1.3.0', last: { outcome: 'confirmed', version: '1.4.0', at: '2026-12-06T10:00:00Z' } },
    };
    expect(p.due(5000, confirmed, 0)).toBe(true);
    p.published(5000, confirmed, 0);
    const rolledBack: StatusMessage = {
      ...base,
      version: '1.3.0',
      update: { previous: null, last: { outcome: 'rolled-back', version: '1.4.0', at: '2026-12-06T10:01:00Z' } },
    };
    expect(p.due(10_000, rolledBack, 0)).toBe(true);
  });

  it('a meaningful change goes at once: confirmation mode, version, epoch, a resend, a backlog starting and ending', () => {
    const changes: [Partial<StatusMessage>, number][] = [
      [{ confirm: 'broker' }, 0],
      [{ version: '0.2.0' }, 0],
      [{ epoch: 'cd' }, 0],
      [{}, 1],
      [{ oldestUnsentAgeS: 61, backlog: 5000 }, 0],
      [{ oldestUnconfirmedAgeS: 151 }, 0],
    ];
    for (const [change, resends] of changes) {
      const p = pacer();
      p.published(0, base, 0);
      expect(p.due(5000, { ...base, ...change }, resends)).toBe(true);
    }
    // and the backlog's end is a change too
    const p = pacer();
    const behind = { ...base, oldestUnsentAgeS: 600 };
    p.published(0, behind, 0);
    expect(p.due(5000, base, 0)).toBe(true);
  });

  it('while behind, a status every busy interval shows the progress', () => {
    const p = pacer();
    const behind = { ...base, oldestUnsentAgeS: 600, backlog: 100_000 };
    p.published(0, behind, 0);
    expect(p.due(30_000, { ...behind, backlog: 50_000 }, 0)).toBe(false);
    expect(p.due(60_000, { ...behind, backlog: 20_000 }, 0)).toBe(true);
  });

  it('after a reset (a new connection) the first status goes whatever it says', () => {
    const p = pacer();
    p.published(0, base, 0);
    expect(p.due(1000, base, 0)).toBe(false);
    p.reset();
    expect(p.due(1000, base, 0)).toBe(true);
  });
});

describe('compact ack', () => {
  const ack = {
    v: 1,
    gateway: 'dl-gw-0001',
    epoch: '5f0c7d1e9a2b4c6d8e0f1a2b3c4d5e6f',
    seq: 131_500,
    events: 18,
    ts: 1_764_168_231_200,
  };

  it('round-trips, a quarter of the JSON, the gateway from the topic; a JSON ack still decodes', () => {
    const bytes = encodeCompactAck(ack);
    expect(bytes[0]).toBe(COMPACT_ACK_VERSION);
    expect(bytes.length).toBe(29);
    expect(encodeAck(ack).length).toBeGreaterThan(4 * bytes.length - 20);
    expect(decodeAck(bytes, 'dl-gw-0001')).toEqual(ack);
    expect(decodeAck(encodeAck(ack))).toEqual(ack);
    // a non-hex epoch travels as UTF-8
    const text = { ...ack, epoch: 'epoch-ä', seq: 0, events: 0, ts: 0 };
    expect(decodeAck(encodeCompactAck(text), 'dl-gw-0001')).toEqual(text);
  });

  it('refuses a compact ack without its topic gateway, truncated, with trailing bytes or unknown flags', () => {
    const bytes = encodeCompactAck(ack);
    const bad = [
      () => decodeAck(bytes),
      () => decodeAck(bytes.subarray(0, bytes.length - 1), 'g'),
      () => decodeAck(Buffer.concat([bytes, Buffer.from([0])]), 'g'),
      () => decodeAck(Buffer.from([2, 0x80, 1, 0x61, 0, 0, 0]), 'g'),
      () => decodeAck(Buffer.from([2, 0, 0, 0, 0, 0]), 'g'),
    ];
    for (const f of bad) {
      try {
        f();
        expect.unreachable('should have thrown');
      } catch (err) {
        expect(err).toBeInstanceOf(LangbiangError);
        expect((err as LangbiangError).code).toBe('DECODE_FAILED');
      }
    }
    for (let i = 0; i < bytes.length; i++) expect(() => decodeAck(bytes.subarray(0, i), 'g')).toThrow(LangbiangError);
  });

  it('refuses to encode what it cannot carry', () => {
    expect(() => encodeCompactAck({ ...ack, seq: -1 })).toThrow(/seq must be an integer/);
    expect(() => encodeCompactAck({ ...ack, epoch: '' })).toThrow(/epoch must be/);
  });
});
