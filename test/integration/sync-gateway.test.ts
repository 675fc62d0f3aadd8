import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openReceiverStore, Receiver } from '../../cloud-sync/receiver/index.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, runCli, startCli, stopStartedClis, waitUntil } from '../helpers/cli.js';
import { ApiClient, setupCodeFrom } from '../helpers/http-client.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Listener, listen } from '../helpers/mqtt-listener.js';
import { freePort } from '../helpers/ports.js';

// A real gateway process polling a simulator, syncing to a real Mosquitto named by one config line.
const GW = 'dl-gw-e2e';

interface Health {
  lastSeq: number;
  sync?: {
    connected: boolean;
    backlog: number;
    lastAckAt: string | null;
    inflight: number;
    confirm: 'city' | 'broker';
    unconfirmed: number;
    oldestUnconfirmedAgeS: number | null;
    lastConfirmAt: string | null;
    resends: number;
  };
}

describe('langbiang start with `sync: { url }`', () => {
  let broker: Mosquitto;
  let sim: ModbusSimulator;
  let dir: string;
  let config: string;
  let resendConfig: string;
  let httpPort: number;
  let gw: RunningCli | null = null;
  let l: Listener;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lb-sync-gw-'));
    broker = await startMosquitto();
    sim = await ModbusSimulator.tcp({ units: [{ unit: 1, profile: loadProfile('xy-md02') }] });
    httpPort = await freePort();
    const gatewayYaml = (confirmTimeout: string) =>
      `gateway: { id: ${GW}, dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: tcp, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 500ms }
devices:
  - { id: climate-1, profile: xy-md02, bus: tcp, unit: 1, interval: 200ms }
storage: { batchMaxDelay: 100ms }
panel: { port: ${httpPort}, host: 127.0.0.1 }
sync: { url: "${broker.url}", batchMaxDelay: 300ms, confirmTimeout: ${confirmTimeout} }
`;
    // The first two tests have no city receiver, so nothing is ever confirmed: with a confirm
    // timeout inside their window the gateway would (rightly) send everything again, and how soon
    // depends on the machine's speed. An hour makes any resend during them a bug.
    config = join(dir, 'gateway.yaml');
    writeFileSync(config, gatewayYaml('1h'));
    // The third test wants resends while the city is silent: the same gateway, a short timeout.
    resendConfig = join(dir, 'gateway-resend.yaml');
    writeFileSync(resendConfig, gatewayYaml('2s'));
    l = await listen(broker.url, GW);
  });

  // a test that fails half-way must not leave its gateway holding the port for the next one
  afterEach(async () => {
    await stopStartedClis();
  });

  afterAll(async () => {
    await stopStartedClis();
    await l?.close();
    await sim?.close();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('syncs readings, reports sync in /healthz and `langbiang status`, and leaves `offline` after SIGKILL', async () => {
    gw = startCli(['start', '--config', config]);
    await gw.waitFor('connected to the broker', 20_000);
    await waitUntil(() => l.seqs().length >= 10, 15_000, '10 readings at the subscriber');
    const b = l.telemetry[0]!;
    expect(b.gateway).toBe(GW);
    expect(b.readings[0]).toMatchObject({ device: 'climate-1', quality: 'good' });
    expect(['temperature', 'humidity']).toContain(b.readings[0]!.point);

    const h = await waitUntil(
      async () => {
        const res = (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()) as Health;
        return res.sync?.lastAckAt ? res : undefined;
      },
      10_000,
      'healthz with a sync ack',
    );
    expect(h.sync).toMatchObject({ connected: true });
    expect(h.sync!.backlog).toBeGreaterThanOrEqual(0);

    const st = await runCli(['status', '--url', `http://127.0.0.1:${httpPort}`]);
    expect(st.stdout).toMatch(/sync connected, backlog \d+/);

    await waitUntil(() => l.status.some((s) => s.payload.state === 'online'), 5000, 'status online');
    // the receiver sees seqs in order with no holes and no duplicates so far: with nothing
    // confirmed and an hour's confirm timeout, the gateway has had no reason to send any again
    const seqs = l.seqs();
    const after = (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()) as Health;
    expect(after.sync?.resends).toBe(0);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));

    gw.child.kill('SIGKILL');
    await gw.exited;
    await waitUntil(() => l.status.some((s) => s.payload.state === 'offline'), 10_000, 'the LWT');
    const lwt = l.status.find((s) => s.payload.state === 'offline')!;
    expect(lwt.payload).toMatchObject({ v: 1, gateway: GW, reason: 'lwt' });

    // a subscriber arriving later finds `offline` retained
    const late = await listen(broker.url, GW, { clean: true, clientId: `late-${Date.now()}` });
    try {
      await waitUntil(() => late.status.length > 0, 5000, 'the retained status');
      expect(late.status[0]!.retain).toBe(true);
      expect(late.status[0]!.payload.state).toBe('offline');
    } finally {
      await late.close();
    }
  });

  it('after a restart it resumes at its cursor: every seq arrives, none is missing', async () => {
    gw = startCli(['start', '--config', config]);
    await gw.waitFor('connected to the broker', 20_000);
    const before = Math.max(...l.seqs());
    await waitUntil(() => Math.max(...l.seqs()) > before + 10, 15_000, 'new readings after the restart');
    gw.child.kill('SIGTERM');
    await gw.exited;
    // a clean stop leaves `offline` with reason shutdown (no LWT) and everything acknowledged
    await waitUntil(() => l.status.some((s) => s.payload.reason === 'shutdown'), 5000, 'the shutdown status');
    const all = [...new Set(l.seqs())].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    const out = await runCli(['export', '--data-dir', join(dir, 'data'), '--format', 'jsonl']);
    const stored = out.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { seq: number }).seq);
    // the readings committed after the last batch went out are the only ones not yet received
    expect(all.length).toBeGreaterThan(stored.length - 50);
    const top = all[all.length - 1]!;
    expect(all).toEqual(stored.filter((s) => s <= top));
  });

  it('shows what the city has confirmed in /healthz, `langbiang status`, the console API and /metrics; a silent city means resends', async () => {
    const health = async () => (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()) as Health;
    const store = await openReceiverStore(join(dir, 'city.db'));
    let receiver = new Receiver({ brokerUrl: broker.url, store, clientId: 'city-recv', group: 'city' });
    await receiver.start();
    await receiver.ready();
    gw = startCli(['start', '--config', resendConfig]);
    try {
      await gw.waitFor('connected to the broker', 20_000);
      // the city confirms: nothing stays unconfirmed for long
      const confirmed = await waitUntil(
        async () => {
          const h = await health();
          return h.sync?.lastConfirmAt && h.sync.unconfirmed < 20 ? h : undefined;
        },
        15_000,
        'a confirmation from the city',
      );
      // (what the earlier tests delivered to a plain subscriber never reached this receiver: the
      // gateway has sent it again once already, and the receiver has it now)
      expect(confirmed.sync).toMatchObject({ confirm: 'city' });
      const resendsBefore = confirmed.sync!.resends;
      const st = await runCli(['status', '--url', `http://127.0.0.1:${httpPort}`]);
      expect(st.stdout).toMatch(/city confirmation: \d+ unconfirmed.*last ack 20\d\d-/);

      // the console's sync section and Prometheus, as a technician and with a token
      const t = new ApiClient(`http://127.0.0.1:${httpPort}`);
      expect(
        (await t.post('/api/setup', { code: setupCodeFrom(gw.output()), user: 'tech', password: 'correct horse' }))
          .status,
      ).toBe(200);
      const sync = (await t.get('/api/sync')).body as {
        agent: Record<string, unknown>;
        outbox: Record<string, number>;
      };
      expect(sync.agent).toMatchObject({ confirmMode: 'city' });
      expect(typeof sync.outbox.confirmed).toBe('number');
      const token = (await t.post('/api/tokens', { label: 'prometheus' })).body.token as string;
      const m = await new ApiClient(`http://127.0.0.1:${httpPort}`).get('/metrics', {
        authorization: `Bearer ${token}`,
      });
      expect(m.text).toMatch(/^langbiang_sync_unconfirmed_readings\{gateway="dl-gw-e2e"\} \d+$/m);
      expect(m.text).toMatch(/^langbiang_sync_confirm_by_city\{[^}]*\} 1$/m);
      expect(m.text).toMatch(/^langbiang_sync_last_confirm_timestamp_seconds\{[^}]*\} [1-9]/m);

      // the city goes silent (its receiver stops): unconfirmed readings grow, then go again
      await receiver.stop();
      const stalled = await waitUntil(
        async () => {
          const h = await health();
          return h.sync && h.sync.resends > resendsBefore && h.sync.unconfirmed > 20 ? h : undefined;
        },
        20_000,
        'a resend while the city is silent',
      );
      expect(stalled.sync!.oldestUnconfirmedAgeS).toBeGreaterThanOrEqual(1);
      const m2 = await new ApiClient(`http://127.0.0.1:${httpPort}`).get('/metrics', {
        authorization: `Bearer ${token}`,
      });
      expect(m2.text).toMatch(/^langbiang_sync_resends_total\{[^}]*\} [1-9]/m);

      // and back: the receiver's dedupe absorbs the resends, confirmation catches up
      receiver = new Receiver({
        brokerUrl: broker.url,
        store: await openReceiverStore(join(dir, 'city.db')),
        clientId: 'city-recv',
        group: 'city',
      });
      await receiver.start();
      await waitUntil(async () => ((await health()).sync?.unconfirmed ?? 99) < 20, 20_000, 'confirmation to catch up');
    } finally {
      await receiver.stop();
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
  });
});
