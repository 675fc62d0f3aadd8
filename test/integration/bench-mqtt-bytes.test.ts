import net from 'node:net';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connackBytes,
  connectBytes,
  PUBACK_BYTES,
  publishBytes,
  subackBytes,
  subscribeBytes,
} from '../../bench/mqtt-bytes.js';
import { clientOptions } from '../../cloud-sync/connection.js';
import { SYNC_DEFAULTS } from '../../cloud-sync/defaults.js';
import { topicsFor } from '../../cloud-sync/protocol/topics.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

/**
 * The wire benchmark counts MQTT bytes from the specification (bench/mqtt-bytes.ts). Here the
 * count is checked against the bytes a real connection carries: mqtt.js with the agent's own
 * client options, through a byte-counting proxy, to Mosquitto 2.
 */
function countingProxy(port: number): Promise<{ port: number; up(): number; down(): number; close(): void }> {
  let up = 0;
  let down = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const broker = net.connect(port, '127.0.0.1');
    sockets.add(client).add(broker);
    client.on('data', (d) => {
      up += d.length;
      broker.write(d);
    });
    broker.on('data', (d) => {
      down += d.length;
      client.write(d);
    });
    const close = () => {
      client.destroy();
      broker.destroy();
    };
    client.on('error', close).on('close', close);
    broker.on('error', close).on('close', close);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address() as net.AddressInfo;
      resolve({
        port: addr.port,
        up: () => up,
        down: () => down,
        close: () => {
          for (const s of sockets) s.destroy();
          server.close();
        },
      });
    });
  });
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('bench/mqtt-bytes: packet sizes against a real connection', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await startMosquitto({ persistence: false });
  });
  afterAll(async () => {
    await broker.close();
  });

  it('counts CONNECT, SUBSCRIBE, aliased PUBLISH, an incoming PUBLISH and every PUBACK to the byte', async () => {
    const proxy = await countingProxy(broker.port);
    const gw = 'dl-bytes-0001';
    const t = topicsFor(gw);
    const will = Buffer.from('{"v":1,"state":"offline"}');
    const client = await mqtt.connectAsync(
      `mqtt://127.0.0.1:${proxy.port}`,
      clientOptions(
        {
          url: '',
          clientId: `langbiang-${gw}`,
          keepaliveS: SYNC_DEFAULTS.keepaliveS,
          connectTimeoutMs: 5000,
          sessionExpiryS: 3600,
        },
        { topic: t.status, payload: will },
      ),
    );
    const city = await mqtt.connectAsync(broker.url, { clientId: 'city-bytes', protocolVersion: 5 });
    try {
      // a receiver listens, as in operation (without subscribers Mosquitto's PUBACK carries reason 0x10: 5 bytes)
      await city.subscribeAsync(t.telemetry, { qos: 1 });
      for (const topic of [t.cmd, t.config, t.ack]) await client.subscribeAsync(topic, { qos: 1 });
      const payload = Buffer.alloc(100, 7);
      await client.publishAsync(t.telemetry, payload, { qos: 1 });
      await client.publishAsync(t.telemetry, payload, { qos: 1 });
      const got = new Promise<void>((resolve) => client.once('message', () => resolve()));
      const ack = Buffer.from('{"v":1,"gateway":"dl-bytes-0001","seq":42}');
      await city.publishAsync(t.ack, ack, { qos: 1 });
      await got;
      await settle(200); // the PUBACK for the city's message
      const expectedUp =
        connectBytes({
          mqtt5: true,
          clientId: `langbiang-${gw}`,
          keepaliveS: SYNC_DEFAULTS.keepaliveS,
          sessionExpiry: true,
          will: { topic: t.status, payloadBytes: will.length },
        }) +
        [t.cmd, t.config, t.ack].reduce((a, topic) => a + subscribeBytes(topic, true) - subackBytes(true), 0) +
        publishBytes(t.telemetry, 100, true, 'first') +
        publishBytes(t.telemetry, 100, true, 'use') +
        PUBACK_BYTES;
      const expectedDown =
        connackBytes(true) + 3 * subackBytes(true) + 2 * PUBACK_BYTES + publishBytes(t.ack, ack.length, true);
      expect({ up: proxy.up(), down: proxy.down() }).toEqual({ up: expectedUp, down: expectedDown });
    } finally {
      await client.endAsync(true);
      await city.endAsync(true);
      proxy.close();
    }
  });
  it('counts an MQTT 3.1.1 connection as the ThingsBoard baseline makes it (user name, subscriptions, PUBLISH)', async () => {
    const proxy = await countingProxy(broker.port);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${proxy.port}`, {
      protocolVersion: 4,
      clientId: 'tb-gateway-bytes',
      keepalive: 30,
      username: 'A1b2C3d4E5f6G7h8I9j0',
      reconnectPeriod: 0,
    });
    const city = await mqtt.connectAsync(broker.url, { clientId: 'tb-city-bytes', protocolVersion: 4 });
    try {
      await city.subscribeAsync('v1/gateway/telemetry', { qos: 1 });
      await client.subscribeAsync('v1/gateway/rpc', { qos: 1 });
      const payload = '{"soil-a1":[{"ts":1772384400000,"values":{"moisture":31.4}}]}';
      await client.publishAsync('v1/gateway/telemetry', payload, { qos: 1 });
      await settle(100);
      const up =
        connectBytes({ mqtt5: false, clientId: 'tb-gateway-bytes', keepaliveS: 30, username: 'A1b2C3d4E5f6G7h8I9j0' }) +
        subscribeBytes('v1/gateway/rpc', false) -
        subackBytes(false) +
        publishBytes('v1/gateway/telemetry', payload.length, false);
      const down = connackBytes(false) + subackBytes(false) + PUBACK_BYTES;
      expect({ up: proxy.up(), down: proxy.down() }).toEqual({ up, down });
    } finally {
      await client.endAsync(true);
      await city.endAsync(true);
      proxy.close();
    }
  });
});
