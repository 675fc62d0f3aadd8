import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../gateway/store/index.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';

/**
 * "What the city has stored is known only when the city says so": with a receiver key pinned on
 * the gateway, an ack counts only when that receiver signed it. Anyone else on the broker who
 * claims the city stored everything changes nothing — the gateway keeps its readings and sends
 * them again. Real CLIs: `city keygen`, `receiver --ack-key`, `start` with the key pinned.
 */
const GW = 'dl-gw-acktrust';
let dir: string;
let broker: Mosquitto;
let sim: ModbusSimulator;
const children: RunningCli[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lb-acktrust-'));
  broker = await startMosquitto();
  sim = await ModbusSimulator.tcp({ units: [{ unit: 1, profile: loadProfile('xy-md02') }] });
});

afterAll(async () => {
  for (const c of children) c.child.kill('SIGKILL');
  await sim?.close();
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Health {
  lastSeq: number;
  sync?: { unconfirmed: number; lastConfirmAt: string | null; resends: number };
}

describe('signed end-to-end acks', () => {
  it('a pinned receiver key: the signed acks confirm, a forged "everything is stored" does not', async () => {
    const keys = join(dir, 'keys');
    const made = await runCli(['city', 'keygen', 'city-recv', '--out', keys]);
    expect(made.code, made.stderr).toBe(0);
    const dataDir = join(dir, 'data');
    mkdirSync(join(dataDir, 'trust', 'ack'), { recursive: true });
    copyFileSync(join(keys, 'city-recv.pem'), join(dataDir, 'trust', 'ack', 'city-recv.pem'));
    const httpPort = await freePort();
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `gateway: { id: ${GW}, dataDir: ${dataDir}, assumeClockSynced: true }
buses:
  - { id: tcp, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 500ms }
devices:
  - { id: climate-1, profile: xy-md02, bus: tcp, unit: 1, interval: 200ms }
storage: { batchMaxDelay: 100ms }
panel: { port: ${httpPort}, host: 127.0.0.1 }
sync: { url: "${broker.url}", batchMaxDelay: 300ms, confirmTimeout: 2s }
`,
    );
    const receiver = startCli([
      'receiver',
      '--broker',
      broker.url,
      '--db',
      join(dir, 'city.db'),
      '--client-id',
      'city-recv',
      '--ack-key',
      join(keys, 'city-recv.key'),
      '--stats-interval',
      '0',
    ]);
    children.push(receiver);
    await receiver.waitFor('receiver subscribed', 20_000);
    expect(receiver.output()).toContain('end-to-end acks are signed');
    const gw = startCli(['start', '--config', config]);
    children.push(gw);
    await gw.waitFor('connected to the broker', 20_000);
    expect(gw.output()).toContain('receiver keys pinned');
    const health = async () => (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()) as Health;

    // the receiver's signed acks confirm
    await waitUntil(
      async () => {
        const h = await health();
        return h.sync?.lastConfirmAt && h.sync.unconfirmed < 20 ? h : undefined;
      },
      15_000,
      'signed acks confirming',
    );

    // the city goes quiet; an impostor on the broker says everything is stored, again and again
    receiver.child.kill('SIGTERM');
    await receiver.exited;
    const impostor = await mqtt.connectAsync(broker.url, { clientId: 'impostor' });
    // the impostor knows the store epoch (every retained status names it)
    const st = Store.open({ dataDir, readonly: true });
    const epoch = st.epoch;
    st.close();
    const before = await health();
    for (let i = 0; i < 20; i++) {
      const h = await health();
      await impostor.publishAsync(
        `langbiang/v1/${GW}/ack`,
        JSON.stringify({ v: 1, gateway: GW, epoch, seq: h.lastSeq, events: 0, ts: Date.now() }),
        { qos: 1 },
      );
      await new Promise((r) => setTimeout(r, 100));
    }
    await impostor.endAsync();
    const after = await waitUntil(
      async () => {
        const h = await health();
        return h.sync && h.sync.resends > before.sync!.resends ? h : undefined;
      },
      15_000,
      'a resend: the forged acks confirmed nothing',
    );
    // readings kept piling up unconfirmed: none was forgotten on the impostor's word
    expect(after.sync!.unconfirmed).toBeGreaterThan(before.sync!.unconfirmed);
    expect(gw.output()).toMatch(/"msg":"ack ignored"/);
    gw.child.kill('SIGTERM');
    await gw.exited;
  }, 90_000);
});
