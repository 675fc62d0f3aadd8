import type { KeyObject } from 'node:crypto';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Confirmation, type DeliveryState } from '../../cloud-sync/confirmation.js';
import type { SyncLogger } from '../../cloud-sync/log.js';
import { encodeAck, encodeCompactAck } from '../../cloud-sync/protocol/ack.js';
import { decodeTelemetry } from '../../cloud-sync/protocol/native.js';
import { TelemetryPump } from '../../cloud-sync/telemetry-pump.js';
import { ManualClock } from '../../gateway/clock/index.js';
import type { Reading } from '../../gateway/core/reading.js';
import { signMessage } from '../../gateway/core/signed.js';
import { CONFIRMED_CURSOR, Store, SYNC_CURSOR } from '../../gateway/store/index.js';

/**
 * The gateway's side of the end-to-end acknowledgement, on a real SQLite store: the city's acks
 * move the durable confirmed cursor, a stall or a lost session asks for a resend, and without acks
 * it falls back to the broker's PUBACK — said in the log, and undone by the first ack.
 */

const GW = 'dl-gw-conf';
let dir: string;
let store: Store;
let clock: ManualClock;
const logged: { level: string; msg: string }[] = [];
const log: SyncLogger = {
  debug: (_o, msg) => logged.push({ level: 'debug', msg }),
  info: (_o, msg) => logged.push({ level: 'info', msg }),
  warn: (_o, msg) => logged.push({ level: 'warn', msg }),
  error: (_o, msg) => logged.push({ level: 'error', msg }),
};

function readings(from: number, n: number): Reading[] {
  return Array.from({ length: n }, (_, k) => ({
    device: 'soil-a1',
    point: 'moisture',
    value: (from + k) / 10,
    quality: 'good' as const,
    ts: 1_780_000_000_000 + (from + k) * 1000,
    mono: (from + k) * 1000,
    bootId: 'boot-a',
    synced: true,
    unit: '%',
  }));
}

function confirmation(
  o: Partial<{ enabled: boolean; timeoutMs: number; startupWindowMs: number; ackKeys: Map<string, KeyObject> }> = {},
) {
  return new Confirmation({
    gatewayId: GW,
    outbox: store,
    enabled: o.enabled ?? true,
    timeoutMs: o.timeoutMs ?? 60_000,
    startupWindowMs: o.startupWindowMs ?? 600_000,
    cursorName: CONFIRMED_CURSOR,
    eventsCursorName: 'sync-events-confirmed',
    seenName: 'sync-acks-seen',
    clock,
    log,
    ackKeys: o.ackKeys,
  });
}

const ack = (seq: number, o: Partial<{ epoch: string; gateway: string; events: number }> = {}) =>
  encodeAck({ v: 1, gateway: o.gateway ?? GW, epoch: o.epoch ?? store.epoch, seq, events: o.events ?? 0, ts: 1 });

const delivered = (readings: number, sent = readings): DeliveryState => ({
  readings,
  events: 0,
  readingsSent: sent,
  eventsSent: 0,
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-confirm-'));
  clock = new ManualClock({ wall: 1_780_000_000_000, mono: 1000 });
  store = Store.open({ dataDir: dir, batchMaxDelayMs: 60_000 });
  store.append(readings(1, 100));
  store.flush();
  logged.length = 0;
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Confirmation', () => {
  it('an ack moves the confirmed cursor, durably; a lower or repeated one does not move it back', () => {
    const c = confirmation();
    expect(c.onAck(ack(60), delivered(80))).toBe(true);
    expect(c.confirmed).toBe(60);
    expect(c.onAck(ack(40), delivered(80))).toBe(false);
    expect(c.onAck(ack(60), delivered(80))).toBe(false);
    expect(c.confirmed).toBe(60);
    store.flush();
    store.close();
    store = Store.open({ dataDir: dir, batchMaxDelayMs: 60_000 });
    expect(store.getCursor(CONFIRMED_CURSOR)).toBe(60);
    expect(confirmation().confirmed).toBe(60);
  });

  it('ignores acks of another epoch, another gateway, or that are not acks; takes one beyond what was sent only up to it', () => {
    const c = confirmation();
    expect(c.onAck(ack(50, { epoch: 'ffff' }), delivered(80))).toBe(false);
    expect(c.onAck(ack(50, { gateway: 'dl-gw-other' }), delivered(80))).toBe(false);
    expect(c.onAck(Buffer.from('{"v":1,"seq":"lots"}'), delivered(80))).toBe(false);
    expect(c.onAck(Buffer.from([0xff, 0x00]), delivered(80))).toBe(false);
    expect(c.confirmed).toBe(0);
    expect(c.status().acksIgnored).toBe(4);
    // the city cannot hold seq 90 when only 80 ever went out
    expect(c.onAck(ack(90), delivered(70, 80))).toBe(true);
    expect(c.confirmed).toBe(80);
    expect(logged.some((l) => l.msg.includes('beyond what this gateway sent'))).toBe(true);
  });

  it('asks for a resend when confirmation lags delivery for the timeout, and not while acks keep coming', () => {
    const c = confirmation({ timeoutMs: 10_000 });
    c.onDelivered(delivered(40));
    clock.advance(6000);
    c.onAck(ack(30), delivered(60));
    c.onDelivered(delivered(60));
    clock.advance(6000);
    // 12 s since the first delivery, but the last progress was 6 s ago
    expect(c.resendDue()).toBe(false);
    clock.advance(4000);
    expect(c.resendDue()).toBe(true);
    c.resent('test', delivered(60));
    expect(c.resendDue()).toBe(false);
    expect(c.status().resends).toBe(1);
    // caught up: nothing lags, nothing is due however long it stays quiet
    c.onAck(ack(60), delivered(60));
    clock.advance(60_000);
    c.onDelivered(delivered(60));
    expect(c.resendDue()).toBe(false);
  });

  it('a connection without a session resends at once when something is unconfirmed', () => {
    const c = confirmation();
    expect(c.resendOnConnect(false, delivered(0))).toBe(false);
    expect(c.resendOnConnect(false, delivered(50))).toBe(true);
    expect(c.resendOnConnect(true, delivered(50))).toBe(false);
    c.onAck(ack(50), delivered(50));
    expect(c.resendOnConnect(false, delivered(50))).toBe(false);
  });

  it('no ack within the start-up window: falls back to PUBACK, says so, and the first ack switches it back', () => {
    const c = confirmation({ startupWindowMs: 30_000 });
    c.onDelivered(delivered(10));
    clock.advance(29_000);
    c.onDelivered(delivered(20));
    expect(c.mode).toBe('city');
    expect(c.confirmed).toBe(0);
    clock.advance(2000);
    c.onDelivered(delivered(30));
    expect(c.mode).toBe('broker');
    expect(c.status().fallback).toBe(true);
    expect(c.confirmed).toBe(30);
    expect(logged.find((l) => l.level === 'warn')?.msg).toMatch(/no end-to-end acknowledgement/);
    c.onAck(ack(35), delivered(40));
    expect(c.mode).toBe('city');
    expect(c.confirmed).toBe(35);
    c.onDelivered(delivered(50));
    expect(c.confirmed).toBe(35);
  });

  it('a store that has seen an ack never falls back by itself, even after a restart', () => {
    confirmation().onAck(ack(5), delivered(10));
    store.flush();
    const c = confirmation({ startupWindowMs: 1000 });
    c.onDelivered(delivered(20));
    clock.advance(3_600_000);
    c.onDelivered(delivered(30));
    expect(c.mode).toBe('city');
    expect(c.confirmed).toBe(5);
  });

  it('sync.confirm: false — PUBACK confirms, acks change nothing', () => {
    const c = confirmation({ enabled: false });
    expect(c.mode).toBe('broker');
    c.onDelivered(delivered(42));
    expect(c.confirmed).toBe(42);
    expect(c.onAck(ack(10), delivered(42))).toBe(false);
    expect(c.resendDue()).toBe(false);
  });
});

describe('signed acks: with a receiver key pinned, only acks it signed count', () => {
  const city = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');
  const signed = (seq: number, o: Partial<{ key: KeyObject; name: string; gateway: string; at: number }> = {}) =>
    signMessage({
      kind: 'ack',
      gateway: o.gateway ?? GW,
      message: { v: 1, gateway: o.gateway ?? GW, epoch: store.epoch, seq, events: 0, ts: 1 },
      issuedAt: o.at ?? clock.wallNow(),
      expiresAt: (o.at ?? clock.wallNow()) + 60_000,
      keyName: o.name ?? 'city-recv',
      privateKey: o.key ?? city.privateKey,
    });

  it('takes a signed ack — even one older than its window (replaying an ack changes nothing) — and no other', () => {
    const c = confirmation({ ackKeys: new Map([['city-recv', city.publicKey]]) });
    // a forged plain ack, as anyone on the broker could publish
    expect(c.onAck(ack(90), delivered(100))).toBe(false);
    // signed by a key that is not pinned, or under a pinned name with another key
    expect(c.onAck(signed(90, { name: 'attacker', key: other.privateKey }), delivered(100))).toBe(false);
    expect(c.onAck(signed(90, { key: other.privateKey }), delivered(100))).toBe(false);
    // for another gateway
    expect(c.onAck(signed(90, { gateway: 'dl-gw-other' }), delivered(100))).toBe(false);
    // one byte changed in the signed body ("seq":95 → "seq":99), the signature kept
    const env = JSON.parse(signed(95).toString()) as { body: string };
    const body = Buffer.from(env.body, 'base64');
    body[body.indexOf('"seq":95') + 7] = '9'.charCodeAt(0);
    expect(c.onAck(Buffer.from(JSON.stringify({ ...env, body: body.toString('base64') })), delivered(100))).toBe(false);
    expect(c.confirmed).toBe(0);
    expect(c.status().acksIgnored).toBe(5);
    expect(c.onAck(signed(60), delivered(100))).toBe(true);
    expect(c.confirmed).toBe(60);
    // a week-old signed ack (a gateway whose clock is not set yet sees such): still counts, never goes back
    expect(c.onAck(signed(70, { at: clock.wallNow() - 7 * 86_400_000 }), delivered(100))).toBe(true);
    expect(c.confirmed).toBe(70);
  });

  it('without a pinned receiver key, a signed ack is refused with a reason (the gateway cannot check it)', () => {
    const c = confirmation();
    expect(c.onAck(signed(10), delivered(20))).toBe(false);
    expect(logged.some((l) => l.msg === 'ack ignored')).toBe(true);
  });
});

describe('TelemetryPump.rewind', () => {
  it('sends again from the confirmed cursor, and the first batch says that everything below it is confirmed', () => {
    store.setCursor(SYNC_CURSOR, 100);
    const pump = new TelemetryPump({
      outbox: store,
      cursorName: SYNC_CURSOR,
      batchMaxReadings: 30,
      batchMaxBytes: 64 * 1024,
      batchMaxDelayMs: 1000,
      backlogRate: 1_000_000,
      inflightWindow: 8,
      clock,
    });
    expect(pump.cursor).toBe(100);
    pump.rewind(60);
    expect(pump.cursor).toBe(60);
    expect(store.getCursor(SYNC_CURSOR)).toBe(60);
    const sent: Buffer[] = [];
    const send = (payload: Buffer, done: (err?: Error) => void) => {
      sent.push(payload);
      done();
    };
    const refused = (err: Error) => {
      throw err;
    };
    pump.pump(send, refused, false);
    // the backlog is paced: the next batch after the bucket refills
    clock.advance(1000);
    pump.pump(send, refused, false);
    const batches = sent.map((p) => decodeTelemetry(p, { gateway: GW }));
    expect(batches.map((b) => [b.firstSeq, b.lastSeq, b.fromConfirmed === true])).toEqual([
      [61, 90, true],
      [91, 100, false],
    ]);
    // a resend is a backlog: every batch of it asks for a prompt ack, and says it reads compact acks
    expect(batches.map((b) => [b.promptAck === true, b.compactAck === true])).toEqual([
      [true, true],
      [true, true],
    ]);
    expect(pump.cursor).toBe(100);
  });

  it("takes a compact ack like a JSON one (the gateway is the topic's), and ignores one of another epoch", () => {
    const c = confirmation();
    const compact = (seq: number, epoch = store.epoch) =>
      encodeCompactAck({ v: 1, gateway: 'unused', epoch, seq, events: 0, ts: 1_780_000_000_000 });
    expect(compact(60).length).toBeLessThan(40);
    expect(c.onAck(compact(60), delivered(80))).toBe(true);
    expect(c.confirmed).toBe(60);
    expect(c.onAck(compact(70, 'ffffffffffffffffffffffffffffffff'), delivered(80))).toBe(false);
    expect(c.onAck(Buffer.from([2, 0x80]), delivered(80))).toBe(false);
    expect(c.confirmed).toBe(60);
    expect(c.status().acksIgnored).toBe(2);
  });

  it('asks for prompt acks once confirmation lags half the timeout, and always with a timeout under two ack paces', () => {
    const c = confirmation({ timeoutMs: 120_000 });
    expect(c.wantsPromptAck()).toBe(false);
    c.onDelivered(delivered(40));
    clock.advance(59_000);
    expect(c.wantsPromptAck()).toBe(false);
    clock.advance(1000);
    expect(c.wantsPromptAck()).toBe(true);
    c.onAck(ack(40), delivered(40));
    expect(c.wantsPromptAck()).toBe(false);
    // a gateway whose timeout is shorter than the receivers' pace allows asks every time
    expect(confirmation({ timeoutMs: 3000 }).wantsPromptAck()).toBe(true);
    // PUBACK confirms in broker mode: nothing to ask the city for
    expect(confirmation({ timeoutMs: 3000, enabled: false }).wantsPromptAck()).toBe(false);
  });
});
