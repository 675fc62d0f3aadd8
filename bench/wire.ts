import { SYNC_DEFAULTS } from '../cloud-sync/defaults.js';
import { silentLogger } from '../cloud-sync/log.js';
import type { NorthboundDevice } from '../cloud-sync/northbound/agent.js';
import type { NorthboundFormat, NorthboundMessage } from '../cloud-sync/northbound/link.js';
import { SparkplugFormat } from '../cloud-sync/northbound/sparkplug/format.js';
import { ThingsBoardFormat } from '../cloud-sync/northbound/thingsboard/format.js';
import { ACK_PACE_MS, ACK_VERSION, encodeAck, encodeCompactAck } from '../cloud-sync/protocol/ack.js';
import { encodeTelemetry, NATIVE_VERSION } from '../cloud-sync/protocol/native.js';
import { encodeStatus, STATUS_VERSION } from '../cloud-sync/protocol/status.js';
import { topicsFor } from '../cloud-sync/protocol/topics.js';
import type { WireReading } from '../cloud-sync/protocol/types.js';
import type { ReadingColumns } from '../gateway/core/outbox.js';
import { qualityCode } from '../gateway/core/reading.js';
import { type BenchContext, type BenchResult, round } from './common.js';
import { type Poll, pollsOf, realisticSites, type Site } from './dataset.js';
import {
  ConnectionTally,
  connackBytes,
  connectBytes,
  publishBytes,
  subscribeBytes,
  type TallyKey,
} from './mqtt-bytes.js';

const DAY = 86_400_000;
/** The ThingsBoard IoT gateway's telemetry topic. */
const TB_TOPIC = 'v1/gateway/telemetry';
/**
 * What the ThingsBoard IoT gateway subscribes to on connecting (gateway RPC and attributes, and
 * its own device's): counted as a session cost on both ThingsBoard lines.
 */
const TB_SUBSCRIPTIONS = [
  'v1/gateway/rpc',
  'v1/gateway/attributes',
  'v1/gateway/attributes/response',
  'v1/devices/me/rpc/request/+',
  'v1/devices/me/attributes',
  'v1/devices/me/attributes/response/+',
];
/** a ThingsBoard device access token (20 characters) as the MQTT user name */
const TB_TOKEN = 'A1b2C3d4E5f6G7h8I9j0';
const HOUR = 3_600_000;
/** the city's receiver commits and acknowledges a batch this long after its PUBACK (order only) */
const ACK_DELAY_MS = 200;

/** A point name no dictionary knows: what a custom profile's points cost. */
const unknownName = (point: string) => `${point}-x`;

/**
 * ThingsBoard gateway JSON, written here from ThingsBoard's published gateway API (not by the
 * gateway's own `thingsboard` format, which is measured separately as a cross-check): one message
 * `{"devA":[{"ts":…,"values":{…}},{"ts":…,"values":{…}}],"devB":[…]}` holds every device and
 * every timestamp of the polls given. Values are JSON numbers, strings or null, as read.
 */
function thingsboardPayload(polls: Poll[]): string {
  const doc: Record<string, { ts: number; values: Record<string, number | string | null> }[]> = {};
  for (const p of polls) {
    const values: Record<string, number | string | null> = {};
    for (const r of p.readings) values[r.point] = r.value;
    const list = doc[p.device.id] ?? [];
    list.push({ ts: p.t, values });
    doc[p.device.id] = list;
  }
  return JSON.stringify(doc);
}

/** The site's devices as the standard formats announce them (births, attributes). */
function northboundDevices(site: Site): NorthboundDevice[] {
  return site.devices.map((d) => ({
    id: d.id,
    profile: d.profile.name,
    manufacturer: d.profile.manufacturer,
    model: d.profile.model,
    points: d.points.map((p) => ({
      name: p.name,
      unit: p.unit,
      kind: p.type === 'string' ? 'string' : p.type === 'bit' || p.function === 'coil' ? 'boolean' : 'number',
      writable: p.writable,
    })),
  }));
}

/** A batch as the store hands it to an agent. */
function columnsOf(batch: WireReading[]): ReadingColumns {
  const ids = new Map<string, number>();
  const names: { device: string; point: string; unit: string | null }[] = [];
  const series = batch.map((r) => {
    const key = `${r.device}\u0000${r.point}`;
    let id = ids.get(key);
    if (id === undefined) {
      id = names.length;
      ids.set(key, id);
      names.push({ device: r.device, point: r.point, unit: r.unit });
    }
    return id;
  });
  return {
    count: batch.length,
    seqs: batch.map((r) => r.seq),
    series,
    names: (id) => names[id]!,
    ts: batch.map((r) => r.ts),
    quality: batch.map((r) => qualityCode(r.quality)),
    values: batch.map((r) => r.value),
  };
}

/** MQTT 3.1.1 QoS 1 PUBLISH bytes of messages (both standard formats connect with 3.1.1). */
const mqtt311Bytes = (messages: NorthboundMessage[]) =>
  messages.reduce((a, m) => a + publishBytes(m.topic, m.payload.length, false), 0);

/** What a session start publishes (births, device connects and attributes). */
function sessionBytes(format: NorthboundFormat): number {
  const out: NorthboundMessage[] = [];
  format.onSession({ publish: (m) => out.push(m), subscribe: () => {} });
  return mqtt311Bytes(out);
}

interface SiteFigures {
  gateway: string;
  readings: number;
  messages: number;
  /** every byte of the native link, both ways, by purpose */
  native: Record<TallyKey, number>;
  nativeBytes: number;
  nativePayload: number;
  /** the payloads with every value null, and also every ts the batch's first: what values and ts cost */
  payloadWithoutValues: number;
  payloadWithoutValuesOrTs: number;
  /** the same link with point names outside the preset dictionary (custom profiles) */
  nativeBytesUnknownNames: number;
  /** ThingsBoard gateway JSON batched like ours: every byte of its link */
  tbBatched: Record<TallyKey, number>;
  tbBatchedBytes: number;
  /** ThingsBoard gateway JSON one message per device per poll: every byte of its link */
  tbMessages: number;
  tbBytes: number;
  /** the gateway's thingsboard format: batched like native, session announcements included */
  tbFormatBytes: number;
  /** the gateway's sparkplug format: births at each session, DDATA per device per batch */
  sparkplugBytes: number;
}

/** The native link's connection, as the agent makes it (cloud-sync/connection.ts). */
function nativeConnect(gateway: string, lwtBytes: number): number {
  const t = topicsFor(gateway);
  return (
    connectBytes({
      mqtt5: true,
      clientId: `langbiang-${gateway}`,
      keepaliveS: SYNC_DEFAULTS.keepaliveS,
      sessionExpiry: true,
      will: { topic: t.status, payloadBytes: lwtBytes },
    }) +
    connackBytes(true) +
    [t.cmd, t.config, t.ack].reduce((a, topic) => a + subscribeBytes(topic, true), 0)
  );
}

/** The ThingsBoard IoT gateway's connection: MQTT 3.1.1, the access token as user name. */
function thingsboardConnect(): number {
  return (
    connectBytes({ mqtt5: false, clientId: 'tb-gateway-bench', keepaliveS: 30, username: TB_TOKEN }) +
    connackBytes(false) +
    TB_SUBSCRIPTIONS.reduce((a, topic) => a + subscribeBytes(topic, false), 0)
  );
}

/**
 * A day of one site, batched as the sync agent batches live readings: a batch opens with the
 * first reading after the previous one and is sent batchMaxDelay later, or at batchMaxReadings.
 * Every link reconnects once an hour (more often than a steady link does), and each tally counts
 * every byte of its connection both ways.
 */
/**
 * How the link's own messages go. As shipped: the status on connecting and then only as a
 * heartbeat (nothing in it changes meaningfully in a day of live operation), the city's ack
 * compact and paced (at most one per gateway per ACK_PACE_MS unless a batch asks for it promptly).
 */
interface LinkChatter {
  /** status on connecting and then every this many ms */
  statusEveryMs: number;
  /** the city's end-to-end acks: off (sync.confirm: false), one per batch, or paced */
  cityAck: 'none' | 'every-batch' | 'paced';
  compactAck: boolean;
  /** the receiver's ack pace (ms) */
  ackPaceMs: number;
  /** sync.batchMaxDelay (ms) */
  batchMaxDelayMs: number;
  /** sync.confirmTimeout (ms): the gateway asks for a prompt ack at half of it */
  confirmTimeoutMs: number;
}
const SHIPPED: LinkChatter = {
  statusEveryMs: SYNC_DEFAULTS.statusHeartbeatMs,
  cityAck: 'paced',
  compactAck: true,
  ackPaceMs: ACK_PACE_MS,
  batchMaxDelayMs: SYNC_DEFAULTS.batchMaxDelayMs,
  confirmTimeoutMs: SYNC_DEFAULTS.confirmTimeoutMs,
};
/** the link before issue 13: status every 60 s, a JSON ack of every batch */
const BEFORE: LinkChatter = { ...SHIPPED, statusEveryMs: 60_000, cityAck: 'every-batch', compactAck: false };

function daySite(site: Site, durationMs: number, opts: LinkChatter = SHIPPED): SiteFigures {
  const topics = topicsFor(site.gatewayId);
  const epoch = '5f0c7d1e9a2b4c6d8e0f1a2b3c4d5e6f';
  const start = Date.UTC(2026, 2, 1, 17, 0, 0); // local midnight in Đà Lạt
  const devices = northboundDevices(site);
  const now = () => start;
  const tbFormat = new ThingsBoardFormat({
    gatewayId: site.gatewayId,
    devices,
    tokenFile: '',
    acceptRpc: false,
    now,
    log: silentLogger,
  });
  const sparkplug = new SparkplugFormat({
    groupId: 'dalat',
    edgeNodeId: site.gatewayId,
    devices,
    bdSeq: { next: () => 0, used: () => {} },
    acceptCommands: false,
    now,
    log: silentLogger,
  });
  const keepaliveMs = SYNC_DEFAULTS.keepaliveS * 1000;
  const native = new ConnectionTally(keepaliveMs);
  const unknownNames = new ConnectionTally(keepaliveMs);
  const tbBatched = new ConnectionTally(keepaliveMs);
  const tbPerPoll = new ConnectionTally(keepaliveMs);
  let tbFormatBytes = 0;
  let sparkplugBytes = 0;
  let messages = 0;
  let readings = 0;
  let tbMessages = 0;
  let payloadWithoutValues = 0;
  let payloadWithoutValuesOrTs = 0;

  // the status the agent publishes (retained, QoS 1) on connecting and every statusIntervalMs
  let seq = 1;
  const status = (t: number, state: 'online' | 'offline') =>
    encodeStatus({
      v: STATUS_VERSION,
      gateway: site.gatewayId,
      epoch,
      state,
      ts: t,
      version: '0.1.0',
      ...(state === 'offline'
        ? { reason: 'lwt' as const }
        : {
            backlog: 0,
            oldestUnsentAgeS: null,
            lastAckAt: t - 12_345,
            unconfirmed: 17,
            oldestUnconfirmedAgeS: 14,
            lastConfirmAt: t - 12_123,
            confirm: 'city' as const,
          }),
    }).length;
  const aliased = new Set<string>();
  const alias = (topic: string) => {
    if (aliased.has(topic)) return 'use' as const;
    aliased.add(topic);
    return 'first' as const;
  };
  let nextConnect = start;
  let promptNext = false;
  let nextStatus = Number.POSITIVE_INFINITY;
  /** reconnects and status messages due up to t, in time order */
  const advance = (t: number) => {
    for (;;) {
      const due = Math.min(nextConnect, nextStatus);
      if (due > t) return;
      for (const link of [native, unknownNames, tbBatched, tbPerPoll]) link.at(due);
      if (due === nextConnect) {
        aliased.clear();
        // what was stored before a reconnect goes as backlog, which asks for a prompt ack
        promptNext = true;
        const lwt = status(due, 'offline');
        for (const link of [native, unknownNames]) link.connect(due, nativeConnect(site.gatewayId, lwt), 0);
        for (const link of [tbBatched, tbPerPoll]) link.connect(due, thingsboardConnect(), 0);
        // the standard formats announce their devices at each session, as the native figure reconnects
        tbFormatBytes += sessionBytes(tbFormat);
        sparkplugBytes += sessionBytes(sparkplug);
        nextConnect += HOUR;
        nextStatus = due;
      }
      if (nextStatus <= t && nextStatus < nextConnect) {
        const a = alias(topics.status);
        const bytes = status(nextStatus, 'online');
        for (const link of [native, unknownNames])
          link.publish(nextStatus, publishBytes(topics.status, bytes, true, a), bytes, 'status');
        nextStatus += opts.statusEveryMs;
      }
    }
  };

  // the receiver's ack pacing (receiver.ts): at most one ack per ACK_PACE_MS, unless a batch asks
  // for it promptly; a paced ack waits until the pace allows, then goes with the newest watermarks
  let lastAckAt = Number.NEGATIVE_INFINITY;
  let ackPending = false;
  /** the gateway's confirmation lag clock (confirmation.ts): delivered and not yet confirmed since */
  let lagSince: number | null = null;
  let ackSeq = 0;
  const ackBytes = (t: number) => {
    const a = { v: ACK_VERSION, gateway: site.gatewayId, epoch, seq: ackSeq, events: 0, ts: t };
    return (opts.compactAck ? encodeCompactAck(a) : encodeAck(a)).length;
  };
  const sendAck = (t: number) => {
    const bytes = publishBytes(topics.ack, ackBytes(t), true);
    for (const link of [native, unknownNames]) link.receive(t, bytes);
    lastAckAt = t;
    ackPending = false;
    lagSince = null;
  };
  const flushPendingAck = (t: number) => {
    if (ackPending && lastAckAt + opts.ackPaceMs <= t) sendAck(lastAckAt + opts.ackPaceMs);
  };

  let batch: WireReading[] = [];
  let batchPolls: Poll[] = [];
  let opened = 0;
  const send = (t: number) => {
    if (batch.length === 0) return;
    flushPendingAck(t);
    advance(t);
    const envelope = {
      v: NATIVE_VERSION,
      gateway: site.gatewayId,
      epoch,
      firstSeq: batch[0]!.seq,
      lastSeq: batch[batch.length - 1]!.seq,
    };
    const payload = encodeTelemetry({ ...envelope, readings: batch }).length;
    const unknown = encodeTelemetry({
      ...envelope,
      readings: batch.map((r) => ({ ...r, point: unknownName(r.point) })),
    }).length;
    // where the payload goes: the same batch without values (all null), and also with one timestamp
    const noValues = batch.map((r) => ({ ...r, value: null }));
    payloadWithoutValues += encodeTelemetry({ ...envelope, readings: noValues }).length;
    payloadWithoutValuesOrTs += encodeTelemetry({
      ...envelope,
      readings: noValues.map((r) => ({ ...r, ts: batch[0]!.ts })),
    }).length;
    const a = alias(topics.telemetry);
    messages++;
    native.publish(t, publishBytes(topics.telemetry, payload, true, a), payload);
    unknownNames.publish(t, publishBytes(topics.telemetry, unknown, true, a), unknown);
    // the city's end-to-end ack on the ack topic (Mosquitto sends the full topic): of every batch
    // before, paced now — the gateway asks for it promptly once its confirmation lags half of
    // confirmTimeout (confirmation.ts), which the pace never lets happen in live operation
    const commit = t + ACK_DELAY_MS;
    ackSeq = envelope.lastSeq;
    if (opts.cityAck === 'every-batch') sendAck(commit);
    else if (opts.cityAck === 'paced') {
      const prompt = promptNext || (lagSince !== null && t - lagSince >= opts.confirmTimeoutMs / 2);
      promptNext = false;
      if (prompt || commit - lastAckAt >= opts.ackPaceMs) sendAck(commit);
      else {
        ackPending = true;
        if (lagSince === null) lagSince = t;
      }
    }
    // ThingsBoard JSON, the same batch in one message
    const tb = Buffer.byteLength(thingsboardPayload(batchPolls));
    tbBatched.publish(t, publishBytes(TB_TOPIC, tb, false), tb);
    // the gateway's own standard formats on the same batches, from their real encoders
    const cols = columnsOf(batch);
    for (const fmt of [tbFormat, sparkplug]) {
      const enc = fmt.encodeReadings(cols, cols.count, false);
      enc.commit();
      if (fmt === tbFormat) tbFormatBytes += mqtt311Bytes(enc.messages);
      else sparkplugBytes += mqtt311Bytes(enc.messages);
    }
    batch = [];
    batchPolls = [];
  };
  for (const p of pollsOf(site, start, durationMs)) {
    if (batch.length > 0 && p.t - opened >= opts.batchMaxDelayMs) send(opened + opts.batchMaxDelayMs);
    flushPendingAck(p.t);
    advance(p.t);
    if (batch.length === 0) opened = p.t;
    batchPolls.push(p);
    for (const r of p.readings) {
      batch.push({
        seq: seq++,
        device: r.device,
        point: r.point,
        ts: r.ts,
        value: r.value,
        unit: r.unit ?? null,
        quality: r.quality,
      });
    }
    // a poll is never split across messages here (a poll is far below batchMaxReadings)
    if (batch.length >= SYNC_DEFAULTS.batchMaxReadings) send(p.t);
    readings += p.readings.length;
    tbMessages++;
    const tb = Buffer.byteLength(thingsboardPayload([p]));
    tbPerPoll.publish(p.t, publishBytes(TB_TOPIC, tb, false), tb);
  }
  send(opened + opts.batchMaxDelayMs);
  flushPendingAck(start + durationMs);
  advance(start + durationMs);
  return {
    gateway: site.gatewayId,
    readings,
    messages,
    native: { ...native.bytes },
    nativeBytes: native.total(),
    nativePayload: native.bytes.payload,
    payloadWithoutValues,
    payloadWithoutValuesOrTs,
    nativeBytesUnknownNames: unknownNames.total(),
    tbBatched: { ...tbBatched.bytes },
    tbBatchedBytes: tbBatched.total(),
    tbMessages,
    tbBytes: tbPerPoll.total(),
    tbFormatBytes,
    sparkplugBytes,
  };
}

export default async function run(ctx: BenchContext): Promise<BenchResult> {
  const duration = ctx.quick ? DAY / 24 : DAY;
  const sites = realisticSites().map((s) => daySite(s, duration));
  const sum = (f: (s: SiteFigures) => number) => sites.reduce((a, s) => a + f(s), 0);
  const readings = sum((s) => s.readings);
  const ours = sum((s) => s.nativeBytes) / readings;
  const tb = sum((s) => s.tbBytes) / readings;
  const tbBatched = sum((s) => s.tbBatchedBytes) / readings;
  const ratio = ours / tb;
  const ratioBatched = ours / tbBatched;
  const tbFormat = sum((s) => s.tbFormatBytes) / readings;
  const sparkplug = sum((s) => s.sparkplugBytes) / readings;
  const breakdown = (k: 'native' | 'tbBatched') =>
    Object.fromEntries(
      (Object.keys(sites[0]![k]) as TallyKey[]).map((key) => [key, round(sum((s) => s[k][key]) / readings, 2)]),
    );
  const batchedTarget = '≤ 4 B and ≤ 0.2×';
  // what the link's own messages cost: the same day with the status every 10 minutes, and without the city's acks
  const variant = (o: LinkChatter) =>
    round(realisticSites().reduce((a, s) => a + daySite(s, duration, o).nativeBytes, 0) / readings, 2);
  return {
    keys: {
      wire_bytes_per_reading: round(ours, 2),
      wire_thingsboard_batched_bytes_per_reading: round(tbBatched, 2),
      wire_ratio_vs_thingsboard_batched: round(ratioBatched, 3),
      wire_thingsboard_bytes_per_reading: round(tb, 2),
      wire_ratio_vs_thingsboard: round(ratio, 3),
      wire_payload_bytes_per_reading: round(sum((s) => s.nativePayload) / readings, 2),
      wire_thingsboard_format_bytes_per_reading: round(tbFormat, 2),
      wire_sparkplug_bytes_per_reading: round(sparkplug, 2),
    },
    rows: [
      {
        metric: `wire bytes per reading, every byte both ways (a day, 3 sites, ${readings.toLocaleString('en-US')} readings)`,
        ours: round(ours, 2),
        unit: 'B',
        versus: 'ThingsBoard gateway JSON, same batches (all devices and timestamps per message), same accounting',
        theirs: round(tbBatched, 2),
        ratio: round(ratioBatched, 3),
        target: batchedTarget,
        met: ours <= 4 && ratioBatched <= 0.2,
      },
      {
        metric: 'wire bytes per reading, every byte both ways',
        ours: round(ours, 2),
        unit: 'B',
        versus: 'ThingsBoard gateway JSON, one message per device per poll, same accounting',
        theirs: round(tb, 2),
        ratio: round(ratio, 3),
        target: '(comparison)',
        met: null,
      },
      {
        metric: 'wire bytes per reading, sync.format: thingsboard (same batches, PUBLISH only)',
        ours: round(tbFormat, 2),
        unit: 'B',
        versus: 'ThingsBoard JSON batched (bench, all bytes)',
        theirs: round(tbBatched, 2),
        ratio: round(tbFormat / tbBatched, 2),
        target: 'reported',
        met: null,
      },
      {
        metric: 'wire bytes per reading, sync.format: sparkplug (same batches, PUBLISH only)',
        ours: round(sparkplug, 2),
        unit: 'B',
        versus: 'native (all bytes)',
        theirs: round(ours, 2),
        ratio: round(sparkplug / ours, 2),
        target: 'reported',
        met: null,
      },
    ],
    details: {
      hours: duration / 3_600_000,
      batching: { batchMaxDelayMs: SYNC_DEFAULTS.batchMaxDelayMs, batchMaxReadings: SYNC_DEFAULTS.batchMaxReadings },
      accounting:
        'every MQTT packet of the connection both ways, sizes from the MQTT 3.1.1/5.0 specifications: PUBLISH (native: MQTT 5 with topic aliases, reset at each reconnect; ThingsBoard: MQTT 3.1.1), PUBACK both ways, PINGREQ/PINGRESP after each keep-alive (30 s) without a broker acknowledgement, CONNECT/CONNACK/SUBSCRIBE/SUBACK at a reconnect every hour; native also its retained status (on connecting, then a heartbeat every sync.statusHeartbeat: nothing in it changes meaningfully in a day of live operation) and the city compact ack (at most one per gateway per minute, full topic, QoS 1). TCP/IP and TLS not counted on either side. The thingsboard/sparkplug format lines count PUBLISH packets and their session announcements only',
      nativeBreakdownPerReading: breakdown('native'),
      payloadPartsPerReading: {
        values: round(sum((s) => s.nativePayload - s.payloadWithoutValues) / readings, 2),
        timestamps: round(sum((s) => s.payloadWithoutValues - s.payloadWithoutValuesOrTs) / readings, 2),
        headerNamesSeriesTags: round(sum((s) => s.payloadWithoutValuesOrTs) / readings, 2),
        readingsPerMessage: round(readings / sum((s) => s.messages), 1),
        note: 'the payload measured again with every value null (values), then also every timestamp equal (timestamps): what is left is the header, the name table, the series column and the tags',
      },
      thingsboardBatchedBreakdownPerReading: breakdown('tbBatched'),
      whatIf: {
        beforeStatusEveryMinuteJsonAckEveryBatch: variant(BEFORE),
        jsonAcksPaced: variant({ ...SHIPPED, compactAck: false }),
        statusOnConnectOnly: variant({ ...SHIPPED, statusEveryMs: Number.POSITIVE_INFINITY }),
        noCityAck: variant({ ...SHIPPED, cityAck: 'none' }),
        ackPace90sConfirmTimeout3m: variant({ ...SHIPPED, ackPaceMs: 90_000, confirmTimeoutMs: 180_000 }),
        batchMaxDelay60s: variant({ ...SHIPPED, batchMaxDelayMs: 60_000 }),
        note: 'the same day, every byte: the link as it was before (status every 60 s, a JSON ack of every batch); the acks paced but JSON; no status but the one on connecting; no end-to-end acks at all (sync.confirm off); acks every 90 s with a 3-minute confirmTimeout; 60 s batches',
      },
      unknownNamesBytesPerReading: round(sum((s) => s.nativeBytesUnknownNames) / readings, 2),
      unknownNamesNote:
        'the same day with every point renamed so the preset dictionary knows none of them: what custom profiles cost',
      sites: sites.map((s) => ({
        gateway: s.gateway,
        readings: s.readings,
        messages: s.messages,
        nativePerReading: round(s.nativeBytes / s.readings, 2),
        nativePayloadPerReading: round(s.nativePayload / s.readings, 2),
        nativePerReadingUnknownNames: round(s.nativeBytesUnknownNames / s.readings, 2),
        tbBatchedPerReading: round(s.tbBatchedBytes / s.readings, 2),
        tbPerReading: round(s.tbBytes / s.readings, 2),
        tbFormatPerReading: round(s.tbFormatBytes / s.readings, 2),
        sparkplugPerReading: round(s.sparkplugBytes / s.readings, 2),
        nativeMbPerMonth: round((s.nativeBytes * (DAY / duration) * 30) / 1e6, 2),
        tbBatchedMbPerMonth: round((s.tbBatchedBytes * (DAY / duration) * 30) / 1e6, 2),
      })),
    },
  };
}
