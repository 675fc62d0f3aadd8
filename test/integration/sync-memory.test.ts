import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectsDirectly } from '../../cloud-sync/mqtt-connect.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

// What the sync link keeps in memory for the life of a gateway (docs/performance.md, "RSS"): the
// compiled agent in a fresh process (dist/, as `langbiang start` runs it) syncs real readings
// through a real Mosquitto, then says which of mqtt.js's optional parts it loaded.
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

let plain: Mosquitto;
let secure: Mosquitto;
let dir: string;

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist/cloud-sync/agent.js'))) throw new Error('dist/ is missing: run `npm run build`');
  dir = mkdtempSync(join(tmpdir(), 'lb-sync-memory-'));
  plain = await startMosquitto();
  secure = await startMosquitto({ tls: true });
});

afterAll(async () => {
  await plain?.close();
  await secure?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface ChildReport {
  delivered: number;
  lastError: string | null;
  lastSeq: number;
  numberCacheEntries: number;
  loaded: string[];
}

/** Syncs 2,000 readings in a child process; returns what it delivered and what it loaded. */
async function syncInChild(
  url: string,
  tls?: { ca: string; cert: string; key: string },
  waitMs = 15_000,
): Promise<ChildReport> {
  const code = `
    import { createRequire } from 'node:module';
    import { mkdtempSync } from 'node:fs';
    import { join } from 'node:path';
    const root = ${JSON.stringify(ROOT)};
    const { Store } = await import(root + 'dist/gateway/store/index.js');
    const { SyncAgent } = await import(root + 'dist/cloud-sync/agent.js');
    const store = Store.open({ dataDir: mkdtempSync(join(${JSON.stringify(dir)}, 'store-')), batchMaxDelayMs: 20 });
    const t0 = Date.now() - 60_000;
    store.append(Array.from({ length: 2000 }, (_, i) => ({ device: 'd' + (i % 5), point: 'p', value: i, quality: 'good',
      ts: t0 + i, mono: i, bootId: 'b', synced: true })));
    store.flush();
    const agent = new SyncAgent({ gatewayId: 'dl-mem-1', outbox: store, events: store, url: ${JSON.stringify(url)},
      tls: ${JSON.stringify(tls ?? null)} ?? undefined, confirm: false, batchMaxReadings: 100, batchMaxDelayMs: 50,
      tickMs: 50, reconnectMinMs: 100, reconnectMaxMs: 300 });
    await agent.start();
    const deadline = Date.now() + ${waitMs};
    while (agent.status().cursor < store.lastSeq() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const delivered = agent.status().cursor;
    const lastError = agent.status().lastError;
    await agent.stop();
    store.close();
    const req = createRequire(root + 'node_modules/mqtt/package.json');
    const numbers = req('mqtt-packet/numbers.js');
    const loaded = Object.keys(req.cache).filter((f) => /node_modules\\/(ws|socks|ip-address)\\//.test(f));
    process.stdout.write(JSON.stringify({ delivered, lastError, lastSeq: 2000, numberCacheEntries: Object.keys(numbers.cache).length, loaded }), () => process.exit(0));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], { timeout: 30_000 });
  return JSON.parse(stdout) as ChildReport;
}

describe('the sync link keeps no memory it does not need', () => {
  it('over plain MQTT: every reading delivered, no number cache, no WebSocket or SOCKS code loaded', async () => {
    const r = await syncInChild(plain.url);
    expect(r.delivered).toBe(r.lastSeq);
    // mqtt-packet's cache is 65,536 Buffers (~6.5 MB of heap) once built: `writeCache: false` keeps it empty
    expect(r.numberCacheEntries).toBe(0);
    // mqtt.connect would have loaded every transport (~3 MB RSS): the link builds its client itself
    expect(r.loaded).toEqual([]);
  }, 40_000);

  it('over TLS (mqtts://, client certificate): delivered the same way, without mqtt.connect', async () => {
    const tls = secure.tls!;
    const r = await syncInChild(secure.url, { ca: tls.ca, cert: tls.cert, key: tls.key });
    expect(r.delivered).toBe(r.lastSeq);
    expect(r.numberCacheEntries).toBe(0);
    expect(r.loaded).toEqual([]);
  }, 40_000);

  it('over TLS with a CA that did not sign the broker: nothing is delivered', async () => {
    const tls = secure.tls!;
    // the broker's own certificate is not a CA: verification fails, as with an impostor broker
    const r = await syncInChild(secure.url, { ca: tls.cert, cert: tls.cert, key: tls.key }, 3000);
    expect(r.delivered).toBe(0);
    // the link says why (the certificate), as it did through mqtt.connect
    expect(r.lastError).toMatch(/certificate|signature|self.signed/i);
  }, 40_000);

  it('a URL with credentials still goes through mqtt.connect, and delivers (which loads its transports)', async () => {
    // the anonymous broker ignores the user name; mqtt.connect is what parses it out of the URL
    const r = await syncInChild(plain.url.replace('mqtt://', 'mqtt://gateway@'));
    expect(r.delivered).toBe(r.lastSeq);
    expect(r.numberCacheEntries).toBe(0);
    expect(r.loaded.some((f) => f.includes('/ws/'))).toBe(true);
  }, 40_000);

  it('builds the client itself only for mqtt:// and mqtts:// URLs without credentials or query', () => {
    expect(connectsDirectly('mqtt://127.0.0.1:1883')).toBe(true);
    expect(connectsDirectly('mqtts://mqtt.dalat.example:8883')).toBe(true);
    expect(connectsDirectly('mqtts://[::1]:8883')).toBe(true);
    expect(connectsDirectly('ws://broker:9001/mqtt')).toBe(false);
    expect(connectsDirectly('wss://broker/mqtt')).toBe(false);
    expect(connectsDirectly('mqtt://user:secret@broker')).toBe(false);
    expect(connectsDirectly('mqtt://broker?clientId=x')).toBe(false);
    expect(connectsDirectly('not a url')).toBe(false);
  });
});
