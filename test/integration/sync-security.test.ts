import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SyncAgent, type SyncAgentOptions } from '../../cloud-sync/agent.js';
import type { Reading } from '../../gateway/core/reading.js';
import { Store, SYNC_CURSOR } from '../../gateway/store/index.js';
import { waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { listen } from '../helpers/mqtt-listener.js';

// mqtts:// with a client certificate, and username + password from a file, against a real Mosquitto.
const GW = 'dl-gw-sec';
let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];

function readings(n: number): Reading[] {
  return Array.from({ length: n }, (_, i) => ({
    device: 'soil-a1',
    point: 'moisture',
    value: 30 + i / 10,
    quality: 'good' as const,
    ts: Date.now() - 10_000 + i,
    mono: i,
    bootId: 'b',
    synced: true,
    unit: '%',
  }));
}

function storeWith(n: number): Store {
  const s = Store.open({ dataDir: mkdtempSync(join(dir, 'store-')), batchMaxDelayMs: 20 });
  cleanups.push(() => s.close());
  s.append(readings(n));
  s.flush();
  return s;
}

function agent(store: Store, broker: Mosquitto, o: Partial<SyncAgentOptions>): SyncAgent {
  const a = new SyncAgent({
    gatewayId: GW,
    outbox: store,
    url: broker.url,
    batchMaxDelayMs: 50,
    reconnectMinMs: 100,
    reconnectMaxMs: 300,
    connectTimeoutMs: 3000,
    tickMs: 50,
    ...o,
  });
  cleanups.unshift(() => a.stop());
  return a;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-sync-sec-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sync over TLS with client certificates (require_certificate true)', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await startMosquitto({ tls: true });
  });
  afterAll(async () => broker?.close());

  it('syncs with the CA, certificate and key files', async () => {
    const tls = broker.tls!;
    const l = await listen(broker.url, GW, {
      ca: readFileSync(tls.ca),
      cert: readFileSync(tls.cert),
      key: readFileSync(tls.key),
    });
    cleanups.unshift(() => l.close());
    const store = storeWith(50);
    const a = agent(store, broker, { tls: { ca: tls.ca, cert: tls.cert, key: tls.key } });
    await a.start();
    await waitUntil(() => store.getCursor(SYNC_CURSOR) === 50, 15_000, 'cursor at 50 over mqtts');
    await waitUntil(() => l.seqs().length >= 50, 5000, 'the subscriber got 50');
    expect(a.status().connected).toBe(true);
  });

  it('without a client certificate the broker refuses: nothing is acknowledged and the error is reported', async () => {
    const store = storeWith(20);
    const a = agent(store, broker, { tls: { ca: broker.tls!.ca } });
    await a.start();
    await waitUntil(() => a.status().lastError !== null, 10_000, 'a connection error');
    await new Promise((r) => setTimeout(r, 500));
    expect(a.status()).toMatchObject({ connected: false, connects: 0, cursor: 0, backlog: 20 });
    expect(store.getCursor(SYNC_CURSOR)).toBe(0);
  });

  it('a missing certificate file is named in the error, and the agent keeps retrying', async () => {
    const store = storeWith(1);
    const a = agent(store, broker, { tls: { ca: broker.tls!.ca, cert: join(dir, 'nope.crt'), key: broker.tls!.key } });
    await a.start();
    await waitUntil(() => a.status().lastError, 5000, 'an error');
    expect(a.status().lastError).toMatch(/sync\.tls\.cert: cannot read .*nope\.crt/);
  });
});

describe('sync with username and a password file', () => {
  let broker: Mosquitto;
  const secret = 'đà lạt s3cret!';
  beforeAll(async () => {
    broker = await startMosquitto({ password: { user: 'dl-gw-sec', pass: secret } });
  });
  afterAll(async () => broker?.close());

  it('reads the password from the file (trailing newline ignored) and syncs', async () => {
    const pwFile = join(dir, 'mqtt-password');
    writeFileSync(pwFile, `${secret}\n`, { mode: 0o600 });
    const store = storeWith(30);
    const logs: string[] = [];
    const log = {
      debug: (o: object, m: string) => logs.push(JSON.stringify(o) + m),
      info: (o: object, m: string) => logs.push(JSON.stringify(o) + m),
      warn: (o: object, m: string) => logs.push(JSON.stringify(o) + m),
      error: (o: object, m: string) => logs.push(JSON.stringify(o) + m),
    };
    const a = agent(store, broker, { username: 'dl-gw-sec', passwordFile: pwFile, log });
    await a.start();
    await waitUntil(() => store.getCursor(SYNC_CURSOR) === 30, 10_000, 'cursor at 30');
    expect(logs.join('\n')).not.toContain(secret);
  });

  it('a wrong password is refused and nothing is acknowledged', async () => {
    const pwFile = join(dir, 'wrong-password');
    writeFileSync(pwFile, 'not it\n');
    const store = storeWith(5);
    const a = agent(store, broker, { username: 'dl-gw-sec', passwordFile: pwFile });
    await a.start();
    await waitUntil(() => a.status().lastError, 10_000, 'an error');
    await new Promise((r) => setTimeout(r, 400));
    expect(a.status()).toMatchObject({ connected: false, connects: 0, cursor: 0 });
  });
});
