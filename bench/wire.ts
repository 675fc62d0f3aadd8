import { SYNC_DEFAULTS } from '../cloud-sync/defaults.js';
import { silentLogger } from '../cloud-sync/log.js';
import type { NorthboundDevice } from '../cloud-sync/northbound/agent.js';
import type { NorthboundFormat, NorthboundMessage } from '../cloud-sync/northbound/link.js';
import { SparkplugFormat } from '../cloud-sync/northbound/sparkplug/format.js';
import { ThingsBoardFormat } from '../cloud-sync/northbound/thingsboard/format.js';
import { encodeTelemetry, NATIVE_VERSION } from '../cloud-sync/protocol/native.js';
import { publishPacketBytes } from '../cloud-sync/protocol/size.js';
import { topicsFor } from '../cloud-sync/protocol/topics.js';
import type { WireReading } from '../cloud-sync/protocol/types.js';
import type { ReadingColumns } from '../gateway/core/outbox.js';
import { qualityCode } from '../gateway/core/reading.js';
import { type BenchContext, type BenchResult, round } from './common.js';
import { type Poll, pollsOf, realisticSites, type Site } from './dataset.js';

const DAY = 86_400_000;
/** The ThingsBoard IoT gateway's telemetry topic (one message per device per poll). */
const TB_TOPIC = 'v1/gateway/telemetry';

/** A point name no dictionary knows: what a custom profile's points cost. */
const unknownName = (point: string) => `${point}-x`;

/** The ThingsBoard gateway JSON for one poll: {"device":[{"ts":…,"values":{…}}]}. */
function thingsboardPayload(p: Poll): string {
  const values: Record<string, number | string | null> = {};
  for (const r of p.readings) values[r.point] = r.value;
  return JSON.stringify({ [p.device.id]: [{ ts: p.t, values }] });
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
  messages.reduce((a, m) => a + publishPacketBytes(m.topic, m.payload.length, false), 0);

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
  nativeBytes: number;
  nativePayload: number;
  /** the same messages with point names outside the preset dictionary (custom profiles) */
  nativeBytesUnknownNames: number;
  tbMessages: number;
  tbBytes: number;
  /** the gateway's thingsboard format: batched like native, session announcements included */
  tbFormatBytes: number;
  /** the gateway's sparkplug format: births at each session, DDATA per device per batch */
  sparkplugBytes: number;
}

/**
 * A day of one site, batched as the sync agent batches live readings: a batch opens with the
 * first reading after the previous one and is sent batchMaxDelay later, or at batchMaxReadings.
 */
function daySite(site: ReturnType<typeof realisticSites>[number], durationMs: number): SiteFigures {
  const topic = topicsFor(site.gatewayId).telemetry;
  const epoch = '5f0c7d1e9a2b4c6d8e0f1a2b3c4d5e6f';
  const start = Date.UTC(2026, 2, 1, 17, 0, 0); // local midnight in Đà Lạt
  const f: SiteFigures = {
    gateway: site.gatewayId,
    readings: 0,
    messages: 0,
    nativeBytes: 0,
    nativePayload: 0,
    nativeBytesUnknownNames: 0,
    tbMessages: 0,
    tbBytes: 0,
    tbFormatBytes: 0,
    sparkplugBytes: 0,
  };
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
  let seq = 1;
  let batch: WireReading[] = [];
  let opened = 0;
  let lastHour = -1;
  const send = () => {
    if (batch.length === 0) return;
    const envelope = {
      v: NATIVE_VERSION,
      gateway: site.gatewayId,
      epoch,
      firstSeq: batch[0]!.seq,
      lastSeq: batch[batch.length - 1]!.seq,
    };
    const payload = encodeTelemetry({ ...envelope, readings: batch });
    const unknown = encodeTelemetry({
      ...envelope,
      readings: batch.map((r) => ({ ...r, point: unknownName(r.point) })),
    });
    // Topic aliases live as long as a connection: count a reconnect (the full topic again) every
    // hour, more often than a steady link does.
    const hour = Math.floor((batch[0]!.ts - start) / 3_600_000);
    const alias = hour !== lastHour ? 'first' : 'use';
    lastHour = hour;
    f.messages++;
    f.nativePayload += payload.length;
    f.nativeBytes += publishPacketBytes(topic, payload.length, true, alias);
    f.nativeBytesUnknownNames += publishPacketBytes(topic, unknown.length, true, alias);
    // the standard formats on the same batches, from their real encoders; a session (births,
    // device connects) every hour, as the native figure counts a reconnect every hour
    if (alias === 'first') {
      f.tbFormatBytes += sessionBytes(tbFormat);
      f.sparkplugBytes += sessionBytes(sparkplug);
    }
    const cols = columnsOf(batch);
    for (const [fmt, key] of [
      [tbFormat, 'tbFormatBytes'],
      [sparkplug, 'sparkplugBytes'],
    ] as const) {
      const enc = fmt.encodeReadings(cols, cols.count, false);
      enc.commit();
      f[key] += mqtt311Bytes(enc.messages);
    }
    batch = [];
  };
  for (const p of pollsOf(site, start, durationMs)) {
    if (batch.length > 0 && p.t - opened >= SYNC_DEFAULTS.batchMaxDelayMs) send();
    for (const r of p.readings) {
      if (batch.length === 0) opened = p.t;
      batch.push({
        seq: seq++,
        device: r.device,
        point: r.point,
        ts: r.ts,
        value: r.value,
        unit: r.unit ?? null,
        quality: r.quality,
      });
      if (batch.length >= SYNC_DEFAULTS.batchMaxReadings) send();
    }
    f.readings += p.readings.length;
    f.tbMessages++;
    f.tbBytes += publishPacketBytes(TB_TOPIC, Buffer.byteLength(thingsboardPayload(p)), false);
  }
  send();
  return f;
}

export default async function run(ctx: BenchContext): Promise<BenchResult> {
  const duration = ctx.quick ? DAY / 24 : DAY;
  const sites = realisticSites().map((s) => daySite(s, duration));
  const sum = (k: keyof Omit<SiteFigures, 'gateway'>) => sites.reduce((a, s) => a + s[k], 0);
  const readings = sum('readings');
  const ours = sum('nativeBytes') / readings;
  const tb = sum('tbBytes') / readings;
  const ratio = ours / tb;
  const tbFormat = sum('tbFormatBytes') / readings;
  const sparkplug = sum('sparkplugBytes') / readings;
  return {
    keys: {
      wire_bytes_per_reading: round(ours, 2),
      wire_thingsboard_bytes_per_reading: round(tb, 2),
      wire_ratio_vs_thingsboard: round(ratio, 3),
      wire_thingsboard_format_bytes_per_reading: round(tbFormat, 2),
      wire_sparkplug_bytes_per_reading: round(sparkplug, 2),
    },
    rows: [
      {
        metric: `wire bytes per reading (a day, 3 sites, ${readings.toLocaleString('en-US')} readings)`,
        ours: round(ours, 2),
        unit: 'B',
        versus: 'ThingsBoard gateway JSON per device per poll',
        theirs: round(tb, 2),
        ratio: round(ratio, 3),
        target: '≤ 6 B and ≤ 0.2×',
        met: ours <= 6 && ratio <= 0.2,
      },
      {
        metric: 'wire bytes per reading, sync.format: thingsboard (same batches)',
        ours: round(tbFormat, 2),
        unit: 'B',
        versus: 'native',
        theirs: round(ours, 2),
        ratio: round(tbFormat / ours, 2),
        target: 'reported',
        met: null,
      },
      {
        metric: 'wire bytes per reading, sync.format: sparkplug (same batches)',
        ours: round(sparkplug, 2),
        unit: 'B',
        versus: 'native',
        theirs: round(ours, 2),
        ratio: round(sparkplug / ours, 2),
        target: 'reported',
        met: null,
      },
    ],
    details: {
      hours: duration / 3_600_000,
      batching: { batchMaxDelayMs: SYNC_DEFAULTS.batchMaxDelayMs, batchMaxReadings: SYNC_DEFAULTS.batchMaxReadings },
      framing:
        'native: MQTT 5 PUBLISH QoS 1 with a Topic Alias (the full topic once per hour, as after a reconnect); ThingsBoard and the thingsboard/sparkplug formats: MQTT 3.1.1 PUBLISH QoS 1 (the formats add their session announcements once per hour); PUBACKs (4 B each way) not counted on any side',
      unknownNamesBytesPerReading: round(sum('nativeBytesUnknownNames') / readings, 2),
      unknownNamesNote:
        'the same day with every point renamed so the preset dictionary knows none of them: what custom profiles cost',
      sites: sites.map((s) => ({
        ...s,
        nativePerReading: round(s.nativeBytes / s.readings, 2),
        nativePerReadingUnknownNames: round(s.nativeBytesUnknownNames / s.readings, 2),
        tbPerReading: round(s.tbBytes / s.readings, 2),
        tbFormatPerReading: round(s.tbFormatBytes / s.readings, 2),
        sparkplugPerReading: round(s.sparkplugBytes / s.readings, 2),
        nativeMbPerMonth: round((s.nativeBytes * (DAY / duration) * 30) / 1e6, 2),
        tbMbPerMonth: round((s.tbBytes * (DAY / duration) * 30) / 1e6, 2),
      })),
    },
  };
}
