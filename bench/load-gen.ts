import mqtt from 'mqtt';
import { encodeTelemetry, NATIVE_VERSION } from '../cloud-sync/protocol/native.js';
import type { WireReading } from '../cloud-sync/protocol/types.js';

/**
 * Simulated gateways for the receiver benchmark: one MQTT connection each, publishing native
 * telemetry batches (the gateway's own encoder) at QoS 1, one batch in flight per connection, as
 * fast as the broker acknowledges. Each gateway's seqs run 1..batches×perBatch without a hole, so
 * the receivers' watermarks reach exactly that number when everything is committed.
 */
export interface LoadOptions {
  brokerUrl: string;
  gateways: number;
  batchesPerGateway: number;
  readingsPerBatch: number;
  /** distinct per run: the receivers keep per-gateway state */
  prefix: string;
}

export interface LoadRun {
  /** resolves when every batch was acknowledged by the broker */
  done: Promise<void>;
  /** wall ms when publishing started */
  startedAt: number;
  close(): Promise<void>;
}

/** A gateway's batch: 10 devices × 10 points, values of a slow sine, as the sites send them. */
function batch(gateway: string, first: number, n: number, t0: number): Buffer {
  const readings: WireReading[] = [];
  for (let i = 0; i < n; i++) {
    const seq = first + i;
    readings.push({
      seq,
      device: `dev-${((seq % 100) / 10) | 0}`,
      point: `p${seq % 10}`,
      ts: t0 + Math.floor(seq / 100) * 10_000,
      value: Math.round((20 + 5 * Math.sin(seq / 300)) * 10) / 10,
      unit: '°C',
      quality: 'good',
    });
  }
  return encodeTelemetry({
    v: NATIVE_VERSION,
    gateway,
    epoch: 'bench',
    firstSeq: first,
    lastSeq: first + n - 1,
    readings,
  });
}

/** Connects every gateway (not timed), then starts publishing. */
export async function startLoad(o: LoadOptions): Promise<LoadRun> {
  const t0 = Date.now() - 86_400_000;
  const clients: mqtt.MqttClient[] = [];
  const payloads: Buffer[][] = [];
  for (let g = 0; g < o.gateways; g += 50) {
    const slice = Array.from({ length: Math.min(50, o.gateways - g) }, (_, k) => g + k);
    clients.push(
      ...(await Promise.all(
        slice.map((i) =>
          mqtt.connectAsync(o.brokerUrl, {
            protocolVersion: 5,
            clientId: `${o.prefix}-gw-${i}`,
            clean: true,
            reconnectPeriod: 0,
            keepalive: 60,
          }),
        ),
      )),
    );
  }
  for (let i = 0; i < o.gateways; i++) {
    const gw = `${o.prefix}-gw-${i}`;
    payloads.push(
      Array.from({ length: o.batchesPerGateway }, (_, b) =>
        batch(gw, 1 + b * o.readingsPerBatch, o.readingsPerBatch, t0),
      ),
    );
  }
  const startedAt = Date.now();
  const done = Promise.all(
    clients.map(async (c, i) => {
      const topic = `langbiang/v1/${o.prefix}-gw-${i}/telemetry`;
      for (const p of payloads[i]!) await c.publishAsync(topic, p, { qos: 1 });
    }),
  ).then(() => {});
  return {
    done,
    startedAt,
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
    },
  };
}
