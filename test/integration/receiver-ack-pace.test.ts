import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPACT_ACK_VERSION, decodeAck } from '../../cloud-sync/protocol/ack.js';
import { encodeEvents } from '../../cloud-sync/protocol/events.js';
import { encodeColumns } from '../../cloud-sync/protocol/native.js';
import { openReceiverStore, Receiver } from '../../cloud-sync/receiver/index.js';
import { runCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

/**
 * The receiver's ack pacing, against a real Mosquitto and a real SQLite database: in live
 * operation at most one ack per gateway per pace; a batch that asks for a prompt ack, and every
 * events message, acked at once; compact acks only to a gateway whose telemetry says it reads them.
 */

const EPOCH = '00112233445566778899aabbccddeeff';
let broker: Mosquitto;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lb-ack-pace-'));
  broker = await startMosquitto();
}, 30_000);

afterAll(async () => {
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

function batch(firstSeq: number, n: number, flags: { prompt?: boolean; compact?: boolean }): Buffer {
  return encodeColumns({
    epoch: EPOCH,
    firstSeq,
    lastSeq: firstSeq + n - 1,
    count: n,
    seqs: null,
    series: new Array(n).fill(0),
    names: () => ({ device: 'dev', point: 'p', unit: null }),
    ts: Array.from({ length: n }, (_, i) => 1_764_000_000_000 + (firstSeq + i) * 1000),
    quality: new Array(n).fill(0),
    values: Array.from({ length: n }, (_, i) => firstSeq + i),
    promptAck: flags.prompt === true,
    compactAck: flags.compact === true,
  });
}

async function setup(name: string, ackPaceMs: number) {
  const store = await openReceiverStore(join(dir, `${name}.db`));
  const receiver = new Receiver({
    brokerUrl: broker.url,
    store,
    clientId: `recv-${name}`,
    group: name,
    ackIntervalMs: 50,
    ackPaceMs,
    fleetStatus: false,
  });
  await receiver.start();
  await receiver.ready();
  const gw = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `gw-${name}` });
  const acks: { at: number; payload: Buffer }[] = [];
  gw.on('message', (_t, payload) => acks.push({ at: performance.now(), payload }));
  await gw.subscribeAsync(`langbiang/v1/${name}/ack`, { qos: 1 });
  const close = async () => {
    await gw.endAsync(true);
    await receiver.stop();
  };
  return { receiver, gw, acks, close, topic: `langbiang/v1/${name}/telemetry` };
}

describe('receiver ack pacing', () => {
  it('live batches: the first ack at once, then at most one per pace carrying the newest watermark', async () => {
    const t = await setup('gw-pace', 1500);
    try {
      await t.gw.publishAsync(t.topic, batch(1, 10, { compact: true }), { qos: 1 });
      await waitUntil(() => t.acks.length >= 1, 5000, 'the first ack');
      const first = t.acks[0]!;
      expect(first.payload[0]).toBe(COMPACT_ACK_VERSION);
      expect(decodeAck(first.payload, 'gw-pace')).toMatchObject({ gateway: 'gw-pace', epoch: EPOCH, seq: 10 });
      // three more live batches inside the pace: no ack for them until it allows one
      for (const from of [11, 21, 31]) await t.gw.publishAsync(t.topic, batch(from, 10, { compact: true }), { qos: 1 });
      await waitUntil(() => t.receiver.stats().readingsInserted === 40, 5000, 'the batches stored');
      expect(t.acks.length).toBe(1);
      await waitUntil(() => t.acks.length >= 2, 5000, 'the paced ack');
      const second = t.acks[1]!;
      expect(second.at - first.at).toBeGreaterThanOrEqual(1400);
      expect(decodeAck(second.payload, 'gw-pace').seq).toBe(40);
      await new Promise((r) => setTimeout(r, 2000));
      expect(t.acks.length).toBe(2);
    } finally {
      await t.close();
    }
  });

  it('a batch asking for a prompt ack, and an events message, are acked at once whatever the pace', async () => {
    const t = await setup('gw-prompt', 60_000);
    try {
      await t.gw.publishAsync(t.topic, batch(1, 5, {}), { qos: 1 });
      await waitUntil(() => t.acks.length >= 1, 5000, 'the first ack');
      // no compact flag: a gateway that reads only JSON acks gets JSON
      expect(t.acks[0]!.payload.toString()).toMatch(/^\{"v":1,/);
      await t.gw.publishAsync(t.topic, batch(6, 5, {}), { qos: 1 });
      await waitUntil(() => t.receiver.stats().readingsInserted === 10, 5000, 'the live batch stored');
      await new Promise((r) => setTimeout(r, 500));
      expect(t.acks.length).toBe(1);
      await t.gw.publishAsync(t.topic, batch(11, 5, { prompt: true }), { qos: 1 });
      await waitUntil(() => t.acks.length >= 2, 3000, 'the prompt ack');
      expect(decodeAck(t.acks[1]!.payload, 'gw-prompt').seq).toBe(15);
      const events = encodeEvents({
        v: 1,
        gateway: 'gw-prompt',
        epoch: EPOCH,
        after: 0,
        events: [{ id: 1, kind: 'audit', ts: Date.now(), data: { what: 'test' } }],
      });
      await t.gw.publishAsync('langbiang/v1/gw-prompt/events', events, { qos: 1 });
      await waitUntil(() => t.acks.length >= 3, 3000, 'the events ack');
      expect(decodeAck(t.acks[2]!.payload, 'gw-prompt')).toMatchObject({ seq: 15, events: 1 });
    } finally {
      await t.close();
    }
  });

  it('on stopping, the receiver sends the paced ack it still holds', async () => {
    const t = await setup('gw-stop', 60_000);
    try {
      await t.gw.publishAsync(t.topic, batch(1, 5, { compact: true }), { qos: 1 });
      await waitUntil(() => t.acks.length >= 1, 5000, 'the first ack');
      await t.gw.publishAsync(t.topic, batch(6, 5, { compact: true }), { qos: 1 });
      await waitUntil(() => t.receiver.stats().readingsInserted === 10, 5000, 'stored');
      await t.receiver.stop();
      await waitUntil(() => t.acks.length >= 2, 3000, 'the ack sent on stopping');
      expect(decodeAck(t.acks[1]!.payload, 'gw-stop').seq).toBe(10);
    } finally {
      await t.close();
    }
  });

  it('langbiang receiver refuses an --ack-pace beyond the protocol minute, or not a number, in one sentence', async () => {
    for (const [pace, want] of [
      ['90', /--ack-pace must be at most 60 seconds/],
      ['soon', /--ack-pace must be a whole number/],
    ] as const) {
      const r = await runCli(['receiver', '--broker', broker.url, '--db', join(dir, 'cli.db'), '--ack-pace', pace]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(want);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
