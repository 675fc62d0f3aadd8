import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_KEYS_DIR } from '../../gateway/control-keys.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { ApiClient } from '../helpers/http-client.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Listener, listen } from '../helpers/mqtt-listener.js';
import { freePort } from '../helpers/ports.js';

/**
 * The ways in, end to end on a real gateway process (the built CLI), a real Mosquitto and a real
 * HTTP server: the city's roll-out tool signs an order for this gateway; the gateway downloads the
 * bundle over a link that drops once (resumed with Range), checks size and hash, and hands it to
 * the installer — which refuses a file that is not a signed release. The gateway keeps running and
 * the city hears every step as `update` events; the roll-out tool counts the failure and stops.
 * The console's upload goes the same way for a technician and is closed to a farmer.
 */
const GW = 'dl-gw-update';
const PASSWORD = 'mật-khẩu-đủ-dài-42';

describe('updates on a running gateway (real process, real Mosquitto, real HTTP)', () => {
  let broker: Mosquitto;
  let sim: ModbusSimulator;
  let dir: string;
  let keys: string;
  let httpPort: number;
  let gw: RunningCli | null = null;
  let l: Listener;
  let files: http.Server;
  const requests: Array<{ url: string; range: string | undefined }> = [];
  const BUNDLE = randomBytes(400_000); // not a release: no manifest, no signature

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lb-update-gw-'));
    broker = await startMosquitto();
    sim = await ModbusSimulator.tcp({ units: [{ unit: 1, profile: loadProfile('xy-md02') }] });
    httpPort = await freePort();
    keys = join(dir, 'keys');
    const kg = await runCli(['city', 'keygen', 'city-ops', '--out', keys]);
    expect(kg.code, kg.stderr).toBe(0);
    mkdirSync(join(dir, 'data', CONTROL_KEYS_DIR), { recursive: true });
    cpSync(join(keys, 'city-ops.pem'), join(dir, 'data', CONTROL_KEYS_DIR, 'city-ops.pem'));
    writeFileSync(join(dir, 'langbiang-9.0.0-x64.lbr'), BUNDLE);
    // the download server: the first connection is cut mid-body, the rest honour Range
    files = http.createServer((req, res) => {
      requests.push({ url: req.url ?? '', range: req.headers.range });
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      if (m)
        res.writeHead(206, {
          'content-range': `bytes ${start}-${BUNDLE.length - 1}/${BUNDLE.length}`,
          'content-length': BUNDLE.length - start,
        });
      else res.writeHead(200, { 'content-length': BUNDLE.length });
      if (requests.length === 1) {
        res.write(BUNDLE.subarray(0, 150_000), () => setTimeout(() => res.socket?.destroy(), 50));
        return;
      }
      res.end(BUNDLE.subarray(start));
    });
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', () => r()));
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `gateway: { id: ${GW}, dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: tcp, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 500ms }
devices:
  - { id: climate-1, profile: xy-md02, bus: tcp, unit: 1, interval: 200ms }
storage: { batchMaxDelay: 100ms }
panel: { port: ${httpPort}, host: 127.0.0.1 }
sync: { url: "${broker.url}", batchMaxDelay: 200ms, confirm: false }
`,
    );
    for (const [name, role] of [
      ['lan', 'technician'],
      ['mai', 'farmer'],
    ] as const) {
      const r = await runCli(['user', 'add', name, '--role', role, '--config', config], { input: `${PASSWORD}\n` });
      expect(r.code, r.stderr).toBe(0);
    }
    l = await listen(broker.url, GW);
    // the updater looks for bundles on sticks here, not on this machine's /media
    gw = startCli(['start', '--config', config], {
      env: { ...process.env, LANGBIANG_UPDATE_MEDIA: join(dir, 'stick') },
    });
    await gw.waitFor('connected to the broker', 20_000);
    await waitUntil(() => l.seqs().length >= 3, 15_000, 'first readings at the city');
  }, 60_000);

  afterAll(async () => {
    gw?.child.kill('SIGKILL');
    await l?.close();
    files?.closeAllConnections();
    files?.close();
    await sim?.close();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const updateEvents = () =>
    l.events
      .flatMap((b) => b.events)
      .filter((e) => e.kind === 'update')
      .map((e) => e.data as Record<string, unknown>);

  it('a signed order: download resumed after a dropped connection, hash checked, the installer refuses a non-release; the roll-out stops', async () => {
    const fleet = join(dir, 'fleet.txt');
    writeFileSync(fleet, `${GW}\n`);
    const { port } = files.address() as AddressInfo;
    const before = l.seqs().length;
    const run = await runCli(
      [
        'city',
        'update',
        '--gateways',
        fleet,
        '--bundle',
        join(dir, 'langbiang-9.0.0-x64.lbr'),
        '--url',
        `http://127.0.0.1:${port}/langbiang-9.0.0-x64.lbr`,
        '--release',
        '9.0.0',
        '--key',
        join(keys, 'city-ops.key'),
        '--broker',
        broker.url,
        '--stages',
        '100',
        '--max-failures',
        '0',
        '--confirm-timeout',
        '60s',
        '--state',
        join(dir, 'rollout.json'),
      ],
      { cwd: dir, timeoutMs: 90_000 },
    );
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`${GW}: FAILED \\(failed: `));
    expect(run.stdout).toMatch(/roll-out of 9\.0\.0 STOPPED at stage 1: 1 failed/);
    // the download: cut once, resumed from where it stopped
    expect(requests.length).toBe(2);
    expect(requests[0]!.range).toBeUndefined();
    expect(Number(/^bytes=(\d+)-$/.exec(requests[1]!.range ?? '')?.[1])).toBeGreaterThan(0);
    const outcomes = updateEvents().map((e) => e.outcome);
    expect(outcomes.slice(0, 2)).toEqual(['downloading', 'downloaded']);
    expect(outcomes).toContain('failed');
    expect(outcomes).not.toContain('verified');
    const failed = updateEvents().find((e) => e.outcome === 'failed')!;
    expect(failed).toMatchObject({ source: 'city', version: '9.0.0' });
    expect(String(failed.reason).length).toBeGreaterThan(10);
    // nothing left on the data partition, and the gateway goes on polling and syncing
    expect(readdirSync(join(dir, 'data', 'update', 'downloads'))).toEqual([]);
    await waitUntil(() => l.seqs().length > before + 3, 10_000, 'readings after the failed update');
    const h = (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()) as { status: string };
    expect(h.status).toBe('ok');
    expect(gw!.child.exitCode).toBeNull();
  }, 120_000);

  it('the console upload: a farmer gets 403, a technician gets the installer refusal in one sentence', async () => {
    const base = `http://127.0.0.1:${httpPort}`;
    const farmer = new ApiClient(base);
    await farmer.login('mai', PASSWORD);
    const denied = await farmer.req('POST', '/api/update', {
      raw: 'x',
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(denied.status).toBe(403);

    const tech = new ApiClient(base);
    await tech.login('lan', PASSWORD);
    const noCsrf = await tech.req('POST', '/api/update', {
      raw: 'x',
      csrf: false,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(noCsrf.status).toBe(403);
    const wrongType = await tech.req('POST', '/api/update', { raw: '{}' });
    expect(wrongType.status).toBe(415);
    /** an upload announcing `length` bytes, its body written by the caller (none of it yet) */
    const rawUpload = (length: number) =>
      http.request(`${base}/api/update`, {
        method: 'POST',
        headers: {
          cookie: tech.cookie,
          'x-csrf-token': tech.csrf,
          origin: base,
          'content-type': 'application/octet-stream',
          'content-length': String(length),
        },
      });
    // a body announced larger than any release bundle is refused before it is read
    const tooLarge = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = rawUpload(600 * 1024 * 1024);
      req.on('response', (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body });
          req.destroy();
        });
      });
      req.on('error', reject);
      req.write(Buffer.alloc(1024));
    });
    expect(tooLarge.status).toBe(413);
    expect(JSON.parse(tooLarge.body).error).toMatch(/larger than 536870912 bytes; that is not a release bundle/);
    // one upload at a time: a second one while the first is still coming in is refused
    const slow = rawUpload(1024 * 1024);
    slow.on('error', () => {}); // destroyed below
    slow.write(Buffer.alloc(64 * 1024));
    const uploads = join(dir, 'data', 'update', 'uploads');
    await waitUntil(
      () => existsSync(uploads) && readdirSync(uploads).length === 1,
      10_000,
      'the first upload being received',
    );
    const second = await tech.req('POST', '/api/update', {
      raw: 'x',
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(second.status).toBe(409);
    slow.destroy();
    await waitUntil(() => readdirSync(uploads).length === 0, 10_000, 'the cut upload removed');
    // a file left by an upload cut by a power loss goes with the next upload
    writeFileSync(join(uploads, 'upload-1-1.lbr'), Buffer.alloc(4096));
    const res = await fetch(`${base}/api/update`, {
      method: 'POST',
      headers: {
        cookie: tech.cookie,
        'x-csrf-token': tech.csrf,
        origin: base,
        'content-type': 'application/octet-stream',
      },
      body: BUNDLE,
    });
    const body = (await res.json()) as { error: string };
    expect(res.status).toBe(422);
    expect(body.error).toMatch(/^not installed: /);
    expect(body.error).not.toMatch(/\n| {4}at /); // one sentence, no stack
    const status = await tech.get('/api/update/progress');
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ busy: false });
    expect(status.body.last).toMatchObject({ source: 'console', actor: 'lan' });
    // the uploaded file does not stay on the data partition
    expect(readdirSync(join(dir, 'data', 'update', 'uploads'))).toEqual([]);
    expect(gw!.child.exitCode).toBeNull();
  });
});
