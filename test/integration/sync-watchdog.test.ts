import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyncAgent } from '../../cloud-sync/agent.js';
import type { Reading } from '../../gateway/core/reading.js';
import { Store, SYNC_CURSOR } from '../../gateway/store/index.js';
import { waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

/**
 * A TCP proxy that can hold back everything the broker sends (PUBACKs included) while the socket
 * stays open: the link looks alive, nothing is acknowledged — only the watchdog can tell.
 */
async function stallingProxy(target: number) {
  const live = new Set<{ stalled: boolean }>();
  const server = net.createServer((client) => {
    const conn = { stalled: false };
    live.add(conn);
    const up = net.connect(target, '127.0.0.1');
    client.on('data', (d) => up.write(d));
    up.on('data', (d) => {
      if (!conn.stalled) client.write(d);
    });
    const close = () => {
      live.delete(conn);
      client.destroy();
      up.destroy();
    };
    for (const s of [client, up]) {
      s.on('close', close);
      s.on('error', close);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    /** the connections open now stop passing broker→gateway bytes; new ones are not affected */
    stallCurrent() {
      for (const c of live) c.stalled = true;
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
      }),
  };
}

function readings(from: number, n: number): Reading[] {
  return Array.from({ length: n }, (_, k) => ({
    device: 'meter',
    point: 'voltage',
    value: 230 + (from + k) / 10,
    quality: 'good' as const,
    ts: Date.now(),
    mono: from + k,
    bootId: 'b',
    synced: true,
  }));
}

describe('the progress watchdog', () => {
  let broker: Mosquitto;
  let dir: string;
  beforeAll(async () => {
    broker = await startMosquitto();
    dir = mkdtempSync(join(tmpdir(), 'lb-sync-wd-'));
  });
  afterAll(async () => {
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('rebuilds the client when connected with work in flight but no PUBACK comes; nothing is lost', async () => {
    const proxy = await stallingProxy(broker.port);
    const store = Store.open({ dataDir: dir, batchMaxDelayMs: 20 });
    const warnings: string[] = [];
    const agent = new SyncAgent({
      gatewayId: 'dl-gw-wd',
      outbox: store,
      url: `mqtt://127.0.0.1:${proxy.port}`,
      batchMaxDelayMs: 50,
      watchdogMs: 1500,
      keepaliveS: 120, // mqtt.js keepalive would not notice within the test: only the watchdog can
      reconnectMinMs: 100,
      reconnectMaxMs: 300,
      tickMs: 50,
      log: { debug() {}, info() {}, error() {}, warn: (_o, m) => warnings.push(m) },
    });
    try {
      await agent.start();
      await waitUntil(() => agent.status().connected, 10_000, 'connected');
      store.append(readings(1, 100));
      store.flush();
      await waitUntil(() => store.getCursor(SYNC_CURSOR) === 100, 10_000, 'first 100 acknowledged');
      proxy.stallCurrent();
      store.append(readings(101, 100));
      store.flush();
      await new Promise((r) => setTimeout(r, 800));
      // published, not acknowledged: the cursor holds
      expect(store.getCursor(SYNC_CURSOR)).toBe(100);
      expect(agent.status()).toMatchObject({ connected: true, connects: 1 });
      await waitUntil(() => store.getCursor(SYNC_CURSOR) === 200, 15_000, 'all 200 acknowledged after the rebuild');
      expect(warnings).toContain('sync stalled; rebuilding the MQTT client');
      expect(agent.status().connects).toBe(2);
    } finally {
      await agent.stop();
      store.close();
      await proxy.close();
    }
  });
});
