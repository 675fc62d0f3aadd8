import mqtt from 'mqtt';
import { decodeEvents } from '../../cloud-sync/protocol/events.js';
import { decodeTelemetry } from '../../cloud-sync/protocol/native.js';
import type { EventsBatch, TelemetryBatch } from '../../cloud-sync/protocol/types.js';

/** A plain mqtt.js subscriber standing in for the city: decodes what the gateway publishes. */
export interface Listener {
  client: mqtt.MqttClient;
  telemetry: TelemetryBatch[];
  events: EventsBatch[];
  status: { topic: string; payload: Record<string, unknown>; retain: boolean }[];
  results: Record<string, unknown>[];
  /** every seq received, in arrival order (duplicates kept) */
  seqs(): number[];
  close(): Promise<void>;
}

export async function listen(url: string, gateway: string, opts: mqtt.IClientOptions = {}): Promise<Listener> {
  // A persistent session (like a real receiver's): the broker queues what arrives while this
  // subscriber is reconnecting, e.g. after a broker restart (Mosquitto persistence keeps it).
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    reconnectPeriod: 300,
    clean: false,
    clientId: `listener-${process.pid}-${Math.random().toString(16).slice(2, 10)}`,
    properties: { sessionExpiryInterval: 300 },
    ...opts,
  });
  const l: Listener = {
    client,
    telemetry: [],
    events: [],
    status: [],
    results: [],
    seqs: () => l.telemetry.flatMap((b) => b.readings.map((r) => r.seq)),
    close: () => client.endAsync(true),
  };
  client.on('message', (topic, payload, packet) => {
    if (topic.endsWith('/telemetry')) l.telemetry.push(decodeTelemetry(payload, { gateway: topic.split('/')[2] }));
    else if (topic.endsWith('/events')) l.events.push(decodeEvents(payload));
    else if (topic.endsWith('/status'))
      l.status.push({ topic, payload: JSON.parse(payload.toString()), retain: packet.retain });
    else if (topic.endsWith('/cmd/result')) l.results.push(JSON.parse(payload.toString()));
  });
  await client.subscribeAsync(`langbiang/v1/${gateway}/#`, { qos: 1 });
  return l;
}
