import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

// The broker helper itself: other suites (sync, receiver, fault tests) stand on it.
const brokers: Mosquitto[] = [];
afterEach(async () => {
  while (brokers.length) await brokers.pop()?.close();
});

function connect(url: string, opts: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 5, ...opts });
    c.once('connect', () => resolve(c));
    c.once('error', (err) => {
      c.end(true);
      reject(err);
    });
    c.once('close', () => reject(new Error('closed before connect')));
  });
}

describe('test/helpers/mosquitto', () => {
  it('starts a broker, keeps retained messages across stop/start on the same port', async () => {
    const b = await startMosquitto();
    brokers.push(b);
    const c = await connect(b.url);
    await c.publishAsync('t/retained', 'kept', { qos: 1, retain: true });
    await c.endAsync();
    await b.stop();
    expect(b.running()).toBe(false);
    await expect(connect(b.url)).rejects.toThrow();
    await b.start();
    const c2 = await connect(b.url);
    const got = new Promise<string>((resolve) => c2.on('message', (_t, p) => resolve(p.toString())));
    await c2.subscribeAsync('t/retained', { qos: 1 });
    expect(await got).toBe('kept');
    await c2.endAsync();
  });

  it('password: refuses anonymous and a wrong password, accepts the user', async () => {
    const b = await startMosquitto({ password: { user: 'gw', pass: 's3cret pass' } });
    brokers.push(b);
    await expect(connect(b.url)).rejects.toThrow();
    await expect(connect(b.url, { username: 'gw', password: 'nope' })).rejects.toThrow();
    const c = await connect(b.url, { username: 'gw', password: 's3cret pass' });
    await c.endAsync();
  });

  it('tls: a client certificate is required', async () => {
    const b = await startMosquitto({ tls: true });
    brokers.push(b);
    expect(b.url.startsWith('mqtts://127.0.0.1:')).toBe(true);
    const tls = b.tls!;
    const c = await connect(b.url, {
      ca: readFileSync(tls.ca),
      cert: readFileSync(tls.cert),
      key: readFileSync(tls.key),
    });
    await c.endAsync();
    await expect(connect(b.url, { ca: readFileSync(tls.ca) })).rejects.toThrow();
  });
});
