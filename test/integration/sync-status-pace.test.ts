import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openReceiverStore, Receiver } from '../../cloud-sync/receiver/index.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Listener, listen } from '../helpers/mqtt-listener.js';
import { freePort } from '../helpers/ports.js';

/**
 * The retained status as the gateway ships it: once on connecting, then only on a meaningful
 * change or at the heartbeat (sync.statusHeartbeat) — not with every batch, while readings flow
 * and the city's (paced) acks confirm them.
 */

describe('the retained status is paced', () => {
  let broker: Mosquitto;
  let sim: ModbusSimulator;
  let dir: string;
  let receiver: Receiver;
  const gateways: RunningCli[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lb-status-pace-'));
    broker = await startMosquitto();
    sim = await ModbusSimulator.tcp({ units: [{ unit: 1, profile: loadProfile('xy-md02') }] });
    receiver = new Receiver({
      brokerUrl: broker.url,
      store: await openReceiverStore(join(dir, 'city.db')),
      clientId: 'recv-status-pace',
      ackIntervalMs: 50,
    });
    await receiver.start();
    await receiver.ready();
  }, 30_000);

  afterAll(async () => {
    for (const g of gateways) g.child.kill('SIGKILL');
    await receiver?.stop();
    await sim?.close();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(id: string, syncExtra: string): Promise<{ gw: RunningCli; l: Listener }> {
    const config = join(dir, `${id}.yaml`);
    writeFileSync(
      config,
      `gateway: { id: ${id}, dataDir: ${dir}/${id}, assumeClockSynced: true }
buses:
  - { id: tcp, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 500ms }
devices:
  - { id: climate-1, profile: xy-md02, bus: tcp, unit: 1, interval: 200ms }
storage: { batchMaxDelay: 100ms }
panel: { port: ${await freePort()}, host: 127.0.0.1 }
sync: { url: "${broker.url}", batchMaxDelay: 300ms${syncExtra} }
`,
    );
    const l = await listen(broker.url, id);
    const gw = startCli(['start', '--config', config]);
    gateways.push(gw);
    await gw.waitFor('connected to the broker', 20_000);
    return { gw, l };
  }

  it('by default: one status on connecting, none with the batches and acks that follow', async () => {
    const { gw, l } = await run('dl-gw-quiet', '');
    await waitUntil(() => l.status.length >= 1, 5000, 'the status on connecting');
    const start = l.seqs().length;
    // 8 s of live operation: ~25 batches, each confirmed by the city
    await new Promise((r) => setTimeout(r, 8000));
    expect(l.seqs().length - start).toBeGreaterThan(40);
    expect(receiver.stats().acksPublished).toBeGreaterThan(0);
    expect(l.status.map((s) => s.payload.state)).toEqual(['online']);
    expect(l.status[0]!.payload).toMatchObject({ gateway: 'dl-gw-quiet', confirm: 'city' });
    gw.child.kill('SIGKILL');
    await l.close();
  });

  it('sync.statusHeartbeat repeats it while nothing changes', async () => {
    const { l } = await run('dl-gw-beat', ', statusHeartbeat: 2s');
    await waitUntil(() => l.status.length >= 1, 5000, 'the status on connecting');
    await new Promise((r) => setTimeout(r, 7000));
    // a heartbeat every 2 s: three or four more after the first in 7 s
    expect(l.status.length).toBeGreaterThanOrEqual(4);
    expect(l.status.length).toBeLessThanOrEqual(6);
    expect(l.status.every((s) => s.payload.state === 'online')).toBe(true);
    await l.close();
  });
});
