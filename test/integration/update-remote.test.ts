import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LangbiangError } from '../../gateway/core/errors.js';
import { createLogger } from '../../gateway/log.js';
import { Store } from '../../gateway/store/index.js';
import { loadInstaller, type UpdateInstaller } from '../../gateway/update/installer.js';
import { RemoteUpdater } from '../../gateway/update/remote.js';
import { type CityKey, makeCityKey } from '../helpers/city-key.js';
import { waitUntil } from '../helpers/cli.js';

/**
 * The city's update order past the broker: a real signed envelope, a real HTTP server to download
 * from, the real store's event log. The installer is the recorder below where a test is about the
 * order and the download (it hands the file's bytes back for checking); the real installer
 * (gateway/update/index.ts) is used for the bundle that is not a release.
 */
const GW = 'dl-gw-0042';
const log = createLogger({ level: 'silent', format: 'json' });

interface Recorder extends UpdateInstaller {
  verified: Buffer[];
  applied: Buffer[];
}

function recordingInstaller(running: string, bundleVersion: string): Recorder {
  const verified: Buffer[] = [];
  const applied: Buffer[] = [];
  return {
    verified,
    applied,
    runningVersion: () => running,
    verify: async (p) => {
      verified.push(readFileSync(p));
      return { version: bundleVersion };
    },
    apply: async (p) => {
      applied.push(readFileSync(p));
      return { version: bundleVersion, previous: running };
    },
    restartExitCode: 75,
  };
}

interface Rig {
  dir: string;
  store: Store;
  key: CityKey;
  updater: RemoteUpdater;
  installed: Array<{ version: string; exitCode: number }>;
  events(): Array<{ kind: string; data: Record<string, unknown> }>;
  outcomes(): string[];
}

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function rig(
  installer: () => Promise<UpdateInstaller>,
  extra: Partial<ConstructorParameters<typeof RemoteUpdater>[0]> = {},
  dir?: string,
  key?: CityKey,
): Rig {
  const dataDir = dir ?? mkdtempSync(path.join(os.tmpdir(), 'lb-upd-'));
  if (!dir) cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const store = Store.open({ dataDir });
  const k = key ?? makeCityKey('city-ops');
  k.pin(dataDir);
  const installed: Rig['installed'] = [];
  const updater = new RemoteUpdater({
    gatewayId: GW,
    dataDir,
    keys: () => k.keys,
    installer,
    events: store,
    log,
    onInstalled: (r) => installed.push({ version: r.version, exitCode: r.exitCode }),
    download: { retryMinMs: 20, retryMaxMs: 50, maxStalledAttempts: 3 },
    ...extra,
  });
  cleanups.push(() => {
    updater.stop();
    store.close();
  });
  const events = () =>
    store
      .eventsAfter(0, 1000)
      .filter((e) => e.kind === 'update' || e.kind === 'refused')
      .map((e) => ({ kind: e.kind, data: e.data }));
  return {
    dir: dataDir,
    store,
    key: k,
    updater,
    installed,
    events,
    outcomes: () => events().map((e) => (e.kind === 'refused' ? 'refused(untrusted)' : String(e.data.outcome))),
  };
}

async function serveBundle(
  body: Buffer,
  behaviour?: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => boolean,
): Promise<{ url: string; ranges: Array<string | undefined> }> {
  const ranges: Array<string | undefined> = [];
  const server = http.createServer((req, res) => {
    ranges.push(req.headers.range);
    if (behaviour?.(req, res, ranges.length)) return;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    if (m)
      res.writeHead(206, {
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
        'content-length': body.length - start,
      });
    else res.writeHead(200, { 'content-length': body.length });
    res.end(body.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/langbiang-1.4.0.lbr`, ranges };
}

function orderFor(body: Buffer, url: string, version = '1.4.0') {
  return { version, url, size: body.length, sha256: createHash('sha256').update(body).digest('hex') };
}

const BODY = randomBytes(200_000);

describe('update orders from the city', () => {
  it('downloads, verifies, installs and asks for the restart; the retained order again changes nothing', async () => {
    const installer = recordingInstaller('1.3.0', '1.4.0');
    const r = rig(async () => installer);
    const { url, ranges } = await serveBundle(BODY);
    const payload = r.key.signUpdate(GW, orderFor(BODY, url));
    r.updater.handleMessage(payload);
    await waitUntil(() => r.installed.length === 1, 10_000, 'the update to get there');
    expect(r.installed).toEqual([{ version: '1.4.0', exitCode: 75 }]);
    expect(installer.applied).toHaveLength(1);
    expect(installer.applied[0]!.equals(BODY)).toBe(true);
    expect(r.outcomes()).toEqual(['downloading', 'downloaded', 'verified']);
    const downloading = r.events()[0]!.data;
    expect(downloading).toMatchObject({ source: 'city', key: 'city-ops', version: '1.4.0', size: BODY.length });
    // nothing left behind: the bundle was installed, the order is done
    expect(readdirSync(path.join(r.dir, 'update', 'downloads'))).toEqual([]);
    // the retained order delivered again at the next connect: handled once already
    r.updater.handleMessage(payload);
    await new Promise((res) => setTimeout(res, 200));
    expect(ranges).toHaveLength(1);
    expect(r.outcomes()).toEqual(['downloading', 'downloaded', 'verified']);
  });

  it('does not follow a redirect from another machine to this one (a request to its own local services)', async () => {
    const external = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    expect(external, 'this test needs a non-loopback IPv4 address').toBeDefined();
    const local = await serveBundle(BODY); // a local service the download server points at
    const remote = http.createServer((_req, res) => {
      res.writeHead(302, { location: local.url });
      res.end();
    });
    await new Promise<void>((r) => remote.listen(0, external, () => r()));
    cleanups.push(() => {
      remote.closeAllConnections();
      remote.close();
    });
    const url = `http://${external}:${(remote.address() as AddressInfo).port}/langbiang-1.4.0.lbr`;
    const installer = recordingInstaller('1.3.0', '1.4.0');
    const r = rig(async () => installer, { allowHttp: true });
    r.updater.handleMessage(r.key.signUpdate(GW, orderFor(BODY, url)));
    await waitUntil(() => r.outcomes().includes('failed'), 10_000, 'the download to fail');
    expect(local.ranges).toEqual([]); // never asked
    expect(installer.verified).toEqual([]);
    const failed = r.events().find((e) => e.data.outcome === 'failed')!.data;
    expect(String(failed.reason)).toMatch(
      /redirect refused: a redirect from another machine to this one is not followed/,
    );
  });

  it('refuses orders it cannot trust, with a rate-limited event and no download', async () => {
    const r = rig(async () => recordingInstaller('1.3.0', '1.4.0'));
    const { url, ranges } = await serveBundle(BODY);
    const order = orderFor(BODY, url);
    const stranger = makeCityKey('city-ops'); // same name, another key
    r.updater.handleMessage(stranger.signUpdate(GW, order));
    r.updater.handleMessage(r.key.signUpdate('dl-gw-other', order));
    r.updater.handleMessage(Buffer.from(JSON.stringify({ v: 1, ...order })));
    for (let i = 0; i < 20; i++) r.updater.handleMessage(Buffer.from('garbage'));
    await new Promise((res) => setTimeout(res, 200));
    const refused = r.events().filter((e) => e.kind === 'refused');
    expect(refused.slice(0, 3).map((e) => e.data.reason)).toEqual(['bad_signature', 'wrong_gateway', 'unsigned']);
    expect(refused.every((e) => e.data.topic === 'update')).toBe(true);
    expect(refused.length).toBe(10); // the budget: a flood from the broker does not fill the store
    expect(ranges).toHaveLength(0);
    expect(r.installed).toHaveLength(0);
  });

  it('never downgrades, never fetches plain http from elsewhere, never takes an older order after a newer one', async () => {
    const r = rig(async () => recordingInstaller('1.4.0', '1.4.0'));
    const { url, ranges } = await serveBundle(BODY);
    const now = Date.now();
    const send = async (payload: Buffer) => {
      const before = r.events().length;
      r.updater.handleMessage(payload);
      await waitUntil(() => r.events().length > before, 5000, 'the refusal event');
    };
    await send(r.key.signUpdate(GW, orderFor(BODY, url, '1.3.9'), { issuedAt: now - 3000 }));
    await send(r.key.signUpdate(GW, orderFor(BODY, url, '1.4.0'), { issuedAt: now - 2000 }));
    await send(
      r.key.signUpdate(GW, orderFor(BODY, 'http://updates.example.net/langbiang-1.5.0.lbr', '1.5.0'), {
        issuedAt: now - 1000,
      }),
    );
    await send(r.key.signUpdate(GW, orderFor(BODY, url, '1.6.0'), { issuedAt: now - 5000 }));
    await send(r.key.signUpdate(GW, { ...orderFor(BODY, url, '1.6.0'), sha256: 'abc' }));
    const reasons = r.events().map((e) => `${e.data.outcome} ${e.data.version ?? '-'}: ${e.data.reason}`);
    expect(reasons[0]).toMatch(
      /^refused 1\.3\.9: 1\.3\.9 is not newer than the running 1\.4\.0; a downgrade is never ordered/,
    );
    expect(reasons[1]).toMatch(/^refused 1\.4\.0: 1\.4\.0 is not newer than the running 1\.4\.0/);
    expect(reasons[2]).toMatch(/^refused 1\.5\.0: http:\/\/ URLs are fetched only from this machine/);
    expect(reasons[3]).toMatch(/^refused 1\.6\.0: replayed/);
    expect(reasons[4]).toMatch(/^refused -: update order: sha256 must be 64 lower-case hex digits/);
    expect(ranges).toHaveLength(0);
  });

  it('a download whose bytes do not match the order is discarded with a failed event; nothing is installed', async () => {
    const installer = recordingInstaller('1.3.0', '1.4.0');
    const r = rig(async () => installer);
    const corrupt = Buffer.from(BODY);
    corrupt[5] = corrupt[5]! ^ 1;
    const { url } = await serveBundle(corrupt);
    r.updater.handleMessage(r.key.signUpdate(GW, orderFor(BODY, url)));
    await waitUntil(() => r.outcomes().includes('failed'), 10_000, 'the update to get there');
    const failed = r.events().find((e) => e.data.outcome === 'failed')!.data;
    expect(failed.reason).toMatch(/does not match the order's sha256/);
    expect(installer.verified).toHaveLength(0);
    expect(r.installed).toHaveLength(0);
    expect(readdirSync(path.join(r.dir, 'update', 'downloads'))).toEqual([]);
    expect(r.updater.status().busy).toBe(false);
  });

  it('a download cut by a restart goes on from its .part file with a Range request', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lb-upd-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const key = makeCityKey('city-ops');
    let stall = true;
    const { url, ranges } = await serveBundle(BODY, (_req, res) => {
      if (!stall) return false;
      res.writeHead(200, { 'content-length': BODY.length });
      res.write(BODY.subarray(0, 80_000)); // then the link goes quiet
      return true;
    });
    const first = rig(async () => recordingInstaller('1.3.0', '1.4.0'), {}, dir, key);
    first.updater.handleMessage(key.signUpdate(GW, orderFor(BODY, url)));
    const part = path.join(dir, 'update', 'downloads', `${orderFor(BODY, url).sha256}.part`);
    await waitUntil(() => existsSync(part) && readFileSync(part).length === 80_000, 10_000, 'the update to get there');
    // the gateway stops (a power cut would leave the same files)
    first.updater.stop();
    first.store.close();
    cleanups.pop();
    stall = false;
    const installer = recordingInstaller('1.3.0', '1.4.0');
    const second = rig(async () => installer, {}, dir, key);
    second.updater.resumeAtStart();
    await waitUntil(() => second.installed.length === 1, 10_000, 'the update to get there');
    expect(ranges.at(-1)).toBe('bytes=80000-');
    expect(installer.applied[0]!.equals(BODY)).toBe(true);
  });

  it('one update at a time: the same order again is idempotent, a newer one replaces the download', async () => {
    const release = false;
    const body2 = randomBytes(150_000);
    const slow = await serveBundle(BODY, (_req, res) => {
      if (release) return false;
      res.writeHead(200, { 'content-length': BODY.length });
      res.write(BODY.subarray(0, 10_000));
      return true;
    });
    const fastServer = await serveBundle(body2);
    const installer = recordingInstaller('1.3.0', '1.5.0');
    const r = rig(async () => installer);
    const first = orderFor(BODY, slow.url, '1.4.0');
    r.updater.handleMessage(r.key.signUpdate(GW, first, { issuedAt: Date.now() - 2000 }));
    await waitUntil(() => slow.ranges.length === 1, 5000, 'the update to get there');
    r.updater.handleMessage(r.key.signUpdate(GW, first, { issuedAt: Date.now() - 1000 }));
    await new Promise((res) => setTimeout(res, 200));
    expect(slow.ranges).toHaveLength(1);
    expect(r.outcomes()).toEqual(['downloading']);
    r.updater.handleMessage(r.key.signUpdate(GW, orderFor(body2, fastServer.url, '1.5.0')));
    await waitUntil(() => r.installed.length === 1, 10_000, 'the update to get there');
    expect(r.installed[0]!.version).toBe('1.5.0');
    expect(installer.applied[0]!.equals(body2)).toBe(true);
    expect(r.outcomes()).toEqual(['downloading', 'downloading', 'downloaded', 'verified']);
    expect(readdirSync(path.join(r.dir, 'update', 'downloads'))).toEqual([]);
  });

  it('refuses an order the data partition cannot hold beside the store', async () => {
    const r = rig(async () => recordingInstaller('1.3.0', '1.4.0'), {
      freeBytes: () => 1_000_000,
      storeHeadroom: () => 500_000,
    });
    const { url, ranges } = await serveBundle(BODY);
    r.updater.handleMessage(r.key.signUpdate(GW, orderFor(BODY, url)));
    await waitUntil(() => r.events().length === 1, 5000, 'the update to get there');
    expect(r.events()[0]!.data).toMatchObject({ outcome: 'refused', version: '1.4.0' });
    expect(String(r.events()[0]!.data.reason)).toMatch(/^not enough space on the data partition: 1\.0 MiB free/);
    expect(ranges).toHaveLength(0);
  });

  it('a downloaded file that is not a release is refused by the real installer; the gateway goes on', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lb-upd-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const installRoot = path.join(dataDir, 'opt');
    const r = rig(
      async () => {
        const real = await loadInstaller({ dataDir, log, installRoot });
        // the order's version check needs a running version; the bundle checks are the installer's
        return { ...real, runningVersion: () => '1.3.0' };
      },
      {},
      dataDir,
    );
    const garbage = randomBytes(50_000);
    const { url } = await serveBundle(garbage);
    r.updater.handleMessage(r.key.signUpdate(GW, orderFor(garbage, url)));
    await waitUntil(() => r.outcomes().includes('failed'), 10_000, 'the update to get there');
    const failed = r.events().find((e) => e.data.outcome === 'failed')!.data;
    expect(failed).toMatchObject({ source: 'city', version: '1.4.0' });
    expect(String(failed.reason).length).toBeGreaterThan(10);
    expect(r.outcomes()).not.toContain('verified');
    expect(r.installed).toHaveLength(0);
    expect(r.updater.status().busy).toBe(false);
  });

  it('an empty message (a retained order cleared) is no refusal; an order already installed is forgotten at start', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lb-upd-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const key = makeCityKey('city-ops');
    const { url, ranges } = await serveBundle(BODY, (_req, res) => {
      res.writeHead(200, { 'content-length': BODY.length });
      res.write(BODY.subarray(0, 1000)); // the link goes quiet
      return true;
    });
    const first = rig(async () => recordingInstaller('1.3.0', '1.4.0'), {}, dir, key);
    first.updater.handleMessage(Buffer.alloc(0));
    first.updater.handleMessage(key.signUpdate(GW, orderFor(BODY, url)));
    await waitUntil(() => ranges.length === 1, 5000, 'the download');
    expect(first.outcomes()).toEqual(['downloading']);
    first.updater.stop();
    first.store.close();
    cleanups.pop();
    // the process stopped after the switch to 1.4.0 and before it forgot the order
    const again = rig(async () => recordingInstaller('1.4.0', '1.4.0'), {}, dir, key);
    again.updater.resumeAtStart();
    await waitUntil(
      () => !JSON.parse(readFileSync(path.join(dir, 'update', 'remote.json'), 'utf8')).active,
      5000,
      'the order to be forgotten',
    );
    expect(ranges).toHaveLength(1);
    expect(again.outcomes()).toEqual(['downloading']);
    expect(again.installed).toHaveLength(0);
    expect(readdirSync(path.join(dir, 'update', 'downloads'))).toEqual([]);
  });

  it('a local install while a download runs is refused as busy', async () => {
    const slow = await serveBundle(BODY, (_req, res) => {
      res.writeHead(200, { 'content-length': BODY.length });
      res.write(BODY.subarray(0, 1000));
      return true;
    });
    const r = rig(async () => recordingInstaller('1.3.0', '1.4.0'));
    r.updater.handleMessage(r.key.signUpdate(GW, orderFor(BODY, slow.url)));
    await waitUntil(() => slow.ranges.length === 1, 5000, 'the update to get there');
    const file = path.join(r.dir, 'x.lbr');
    writeFileSync(file, BODY);
    const err = await r.updater.installLocal(file, 'console', 'tech').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LangbiangError);
    expect((err as LangbiangError).code).toBe('BUSY');
    expect((err as Error).message).toMatch(/an update to 1\.4\.0 from the city is in progress/);
  });
});
