import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAck } from '../../cloud-sync/protocol/ack.js';
import { openReceiverStore, Receiver } from '../../cloud-sync/receiver/index.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Listener, listen } from '../helpers/mqtt-listener.js';
import { freePort } from '../helpers/ports.js';

/**
 * Ack pacing must not slow a drain: a real gateway (default confirmTimeout), a broker outage that
 * leaves a backlog, and a receiver whose live pace is ten minutes. Live batches do not ask for a
 * prompt ack and get none; the backlog's batches ask, and the city confirms them at once.
 */

const GW = 'dl-gw-prompt';

describe('prompt acks for a backlog, paced acks for live data', () => {
  let broker: Mosquitto;
  let sim: ModbusSimulator;
  let dir: string;
  let receiver: Receiver;
  let gw: RunningCli | undefined;
  let l: Listener;
  let acks: mqtt.MqttClient;
  const seen: { at: number; seq: number }[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lb-prompt-ack-'));
    broker = await startMosquitto();
    sim = await ModbusSimulator.tcp({ units: [{ unit: 1, profile: loadProfile('xy-md02') }] });
    receiver = new Receiver({
      brokerUrl: broker.url,
      store: await openReceiverStore(join(dir, 'city.db')),
      clientId: 'recv-prompt',
      ackIntervalMs: 50,
      ackPaceMs: 600_000,
      reconnectMaxMs: 500,
    });
    await receiver.start();
    await receiver.ready();
    l = await listen(broker.url, GW);
    acks = await mqtt.connectAsync(broker.url, {
      protocolVersion: 5,
      clientId: 'ack-watch',
      clean: false,
      reconnectPeriod: 300,
      properties: { sessionExpiryInterval: 300 },
    });
    acks.on('message', (_t, payload) => seen.push({ at: performance.now(), seq: decodeAck(payload, GW).seq }));
    await acks.subscribeAsync(`langbiang/v1/${GW}/ack`, { qos: 1 });
  }, 30_000);

  afterAll(async () => {
    gw?.child.kill('SIGKILL');
    await acks?.endAsync(true);
    await l?.close();
    await receiver?.stop();
    await sim?.close();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a drain after a broker outage is confirmed at once; live batches wait for the pace', async () => {
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `gateway: { id: ${GW}, dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: tcp, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 500ms }
devices:
  - { id: climate-1, profile: xy-md02, bus: tcp, unit: 1, interval: 200ms }
storage: { batchMaxDelay: 100ms }
panel: { port: ${await freePort()}, host: 127.0.0.1 }
sync: { url: "${broker.url}", batchMaxDelay: 300ms }
`,
    );
    gw = startCli(['start', '--config', config]);
    await gw.waitFor('connected to the broker', 20_000);
    // live: the first message is acked at once, the following ones not before the pace
    await waitUntil(() => seen.length >= 1, 10_000, 'the first ack');
    await new Promise((r) => setTimeout(r, 3000));
    const live = l.telemetry.slice(1);
    expect(live.length).toBeGreaterThan(3);
    expect(live.every((b) => b.promptAck !== true)).toBe(true);
    expect(live.every((b) => b.compactAck === true)).toBe(true);
    expect(seen.length).toBe(1);

    // an outage: what is stored meanwhile is a backlog at the next connection
    await broker.stop();
    await new Promise((r) => setTimeout(r, 3000));
    const before = l.telemetry.length;
    await broker.start();
    await waitUntil(() => l.telemetry.slice(before).some((b) => b.promptAck === true), 20_000, 'the backlog');
    const drained = Math.max(
      ...l.telemetry
        .slice(before)
        .filter((b) => b.promptAck === true)
        .map((b) => b.lastSeq),
    );
    // confirmed long before a ten-minute pace would allow: the drain asked for it
    await waitUntil(() => seen.some((a) => a.seq >= drained), 15_000, 'the ack of the drained backlog');
  });
});
