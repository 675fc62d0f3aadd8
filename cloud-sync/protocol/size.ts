import { SYNC_DEFAULTS } from '../defaults.js';
import { encodeTelemetry, NATIVE_VERSION } from './native.js';
import { topicsFor } from './topics.js';
import type { WireReading } from './types.js';

/**
 * Wire size of the native encoding as a broker sees it, for the size test and `npm run bench`.
 * Counts the MQTT 5 PUBLISH packet (fixed header, topic or topic alias, packet id, properties) and
 * its PUBACK.
 */
export function varintLen(n: number): number {
  let len = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

/**
 * Exact size of a QoS 1 PUBLISH packet: fixed header byte, Remaining Length (1-4 bytes), topic
 * (2-byte length + UTF-8), packet id (2), and for MQTT 5 the property length (1 byte) and
 * properties. `alias`: 'none' sends the topic; 'first' the topic and a Topic Alias property (3
 * bytes), as the first message of a connection does; 'use' an empty topic and the alias, as every
 * later one does (checked against mqtt.js and Mosquitto 2 byte for byte: 144 then 110 bytes for a
 * 100-byte payload on a 33-byte topic). `mqtt5: false` is MQTT 3.1.1 (no properties, no alias).
 */
export function publishPacketBytes(
  topic: string,
  payloadBytes: number,
  mqtt5: boolean,
  alias: 'none' | 'first' | 'use' = 'none',
): number {
  const topicBytes = alias === 'use' ? 0 : Buffer.byteLength(topic);
  const props = mqtt5 ? 1 + (alias === 'none' ? 0 : 3) : 0;
  const remaining = 2 + topicBytes + 2 + props + payloadBytes;
  return 1 + varintLen(remaining) + remaining;
}

/** An MQTT 5 QoS 1 PUBLISH of the agent plus its PUBACK (4 bytes: reason "success", no properties). */
export function mqttPublishWireBytes(
  payloadBytes: number,
  topic: string,
  alias: 'none' | 'first' | 'use' = 'none',
): number {
  return publishPacketBytes(topic, payloadBytes, true, alias) + 4;
}

export interface LiveDayResult {
  readings: number;
  messages: number;
  wireBytes: number;
  bytesPerReading: number;
  payloadPerReading: number;
}

/**
 * A gateway polling a soil probe (7 points), a climate sensor (2) and an energy meter (6) every
 * second — the 15 points of DESIGN.md's comparison — with realistic noise, batched the way the
 * agent batches live readings (batchMaxDelay / batchMaxReadings).
 */
export function simulateLiveDay(
  opts: { hours?: number; batchMaxDelayMs?: number; batchMaxReadings?: number; gateway?: string } = {},
): LiveDayResult {
  const hours = opts.hours ?? 24;
  const delay = opts.batchMaxDelayMs ?? SYNC_DEFAULTS.batchMaxDelayMs;
  const maxReadings = opts.batchMaxReadings ?? SYNC_DEFAULTS.batchMaxReadings;
  const gateway = opts.gateway ?? 'dl-gw-0001';
  const topic = topicsFor(gateway).telemetry;
  let seed = 42;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  // [device, point, unit, start, step (noise), decimals, drift chance]
  const points: [string, string, string, number, number, number][] = [
    ['soil-a1', 'moisture', '%', 35.2, 0.1, 1],
    ['soil-a1', 'temperature', '°C', 22.4, 0.1, 1],
    ['soil-a1', 'ec', 'µS/cm', 450, 1, 0],
    ['soil-a1', 'ph', '', 6.52, 0.01, 2],
    ['soil-a1', 'nitrogen', 'mg/kg', 40, 1, 0],
    ['soil-a1', 'phosphorus', 'mg/kg', 18, 1, 0],
    ['soil-a1', 'potassium', 'mg/kg', 95, 1, 0],
    ['climate-1', 'temperature', '°C', 24.3, 0.1, 1],
    ['climate-1', 'humidity', '%RH', 78.5, 0.1, 1],
    ['meter', 'voltage', 'V', 229.8, 0.3, 1],
    ['meter', 'current', 'A', 3.21, 0.05, 2],
    ['meter', 'active_power', 'W', 690.5, 8, 1],
    ['meter', 'power_factor', '', 0.93, 0.01, 2],
    ['meter', 'frequency', 'Hz', 50, 0.01, 2],
    ['meter', 'import_energy', 'kWh', 1234.56, 0.01, 2],
  ];
  const values = points.map((p) => p[3]);
  const devices = [...new Set(points.map((p) => p[0]))];
  const offsets = devices.map((_, i) => i * 137);
  let seq = 1;
  let wireBytes = 0;
  let payloadBytes = 0;
  let messages = 0;
  let readings = 0;
  let pending: WireReading[] = [];
  let pendingSince = -1;
  let lastHour = -1;
  const t0 = 1_717_000_000_000;
  const flush = () => {
    const payload = encodeTelemetry({
      v: NATIVE_VERSION,
      gateway,
      epoch: 'f3a9c2d4e5b60718293a4b5c6d7e8f90',
      firstSeq: pending[0]!.seq,
      lastSeq: pending[pending.length - 1]!.seq,
      readings: pending,
    });
    payloadBytes += payload.length;
    // the agent's client uses topic aliases; count a fresh connection (full topic) every hour
    const hour = Math.floor((pending[0]!.ts - t0) / 3_600_000);
    wireBytes += mqttPublishWireBytes(payload.length, topic, hour !== lastHour ? 'first' : 'use');
    lastHour = hour;
    messages++;
    readings += pending.length;
    pending = [];
    pendingSince = -1;
  };
  for (let s = 0; s < hours * 3600; s++) {
    for (let d = 0; d < devices.length; d++) {
      const ts = t0 + s * 1000 + offsets[d]! + Math.floor(rnd() * 15);
      if (pendingSince >= 0 && ts - pendingSince >= delay) flush();
      for (let i = 0; i < points.length; i++) {
        const [dev, point, unit, , step, dec] = points[i]!;
        if (dev !== devices[d]) continue;
        if (rnd() < 0.5) values[i] = values[i]! + Math.round((rnd() - 0.5) * 4) * step;
        const value = Number(values[i]!.toFixed(dec));
        pending.push({ seq: seq++, device: dev, point, unit: unit || null, ts, value, quality: 'good' });
        if (pendingSince < 0) pendingSince = ts;
        if (pending.length >= maxReadings) flush();
      }
    }
  }
  if (pending.length) flush();
  return {
    readings,
    messages,
    wireBytes,
    bytesPerReading: wireBytes / readings,
    payloadPerReading: payloadBytes / readings,
  };
}
