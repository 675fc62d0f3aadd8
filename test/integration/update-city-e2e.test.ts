import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCityUpdate } from '../../gateway/cli/cmd-city-update.js';
import { CONTROL_KEYS_DIR } from '../../gateway/control-keys.js';
import { packRelease } from '../../gateway/update/pack.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { makeCityKey } from '../helpers/city-key.js';
import { waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Listener, listen } from '../helpers/mqtt-listener.js';
import { freePort } from '../helpers/ports.js';

/**
 * The city's way in, all real: releases 1.0.0 and 1.1.0 packed from this checkout and signed with
 * a release key; 1.0.0 installed in a temporary install root and started from `current` as the
 * systemd unit does (with the pre-start check between starts and a restart after every exit); a
 * real Mosquitto; an HTTP server that drops the first download mid-body. `langbiang city update`
 * signs an order for the gateway with the city's control key; the gateway downloads (resuming with
 * Range), checks size and hash, verifies the release key, installs 1.1.0 beside 1.0.0, switches
 * `current` and exits with the restart code; 1.1.0 starts, confirms itself, and the roll-out tool
 * sees it and reports the roll-out complete. Readings flow to the city before and after, with no
 * hole in the seqs.
 */
const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));
const GW = 'dl-gw-e2e-update';

describe('a city roll-out to a real gateway (download, verify, install, restart, confirm)', () => {
  let dir: string;
  let broker: Mosquitto;
  let sim: ModbusSimulator;
  let l: Listener;
  let files: http.Server;
  let bundle: string;
  let stickBundle: string;
  const requests: Array<string | undefined> = [];
  const exits: Array<number | null> = [];
  let gw: ChildProcess | null = null;
  let output = '';
  let supervising = true;
  const installRoot = () => join(dir, 'opt');
  const dataDir = () => join(dir, 'data');

  /** what the systemd unit does: pre-start check, start from `current`, restart after every exit */
  const startGateway = () => {
    spawnSync(process.execPath, [
      join(installRoot(), 'bin', 'langbiang-prestart.mjs'),
      '--install-root',
      installRoot(),
      '--data-dir',
      dataDir(),
    ]);
    const child = spawn(
      process.execPath,
      [join(installRoot(), 'current', 'bin', 'langbiang.js'), 'start', '--config', join(dir, 'gateway.yaml')],
      { env: { ...process.env, LANGBIANG_UPDATE_MEDIA: join(dir, 'stick') }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.on('exit', (code) => {
      exits.push(code);
      if (supervising) setTimeout(() => startGateway(), 200);
    });
    gw = child;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lb-update-e2e-'));
    broker = await startMosquitto();
    sim = await ModbusSimulator.tcp({ units: [{ unit: 1, profile: loadProfile('xy-md02') }] });
    // the release key (pinned on the gateway) and the city's control key (pinned too): two roles
    const keys = join(dir, 'keys');
    const release = makeCityKey('rel');
    mkdirSync(keys);
    const relKey = release.writeFiles(keys).privateFile;
    mkdirSync(join(dataDir(), 'trust', 'release'), { recursive: true });
    copyFileSync(join(keys, 'rel.pem'), join(dataDir(), 'trust', 'release', 'rel.pem'));
    // two releases packed from a copy of this checkout (hard links; node_modules reused)
    const src = join(dir, 'src');
    mkdirSync(src);
    const pkg = JSON.parse(readFileSync(join(CHECKOUT, 'package.json'), 'utf8')) as { files: string[] };
    for (const top of new Set([...pkg.files, 'package.json', 'package-lock.json'].map((e) => e.split('/')[0]!))) {
      const r = spawnSync('cp', ['-al', join(CHECKOUT, top), join(src, top)]);
      expect(r.status, String(r.stderr)).toBe(0);
    }
    const first = packRelease({
      root: src,
      keyFile: relKey,
      version: '1.0.0',
      reuseModules: true,
      out: join(dir, 'b1'),
    });
    bundle = packRelease({
      root: src,
      keyFile: relKey,
      version: '1.1.0',
      reuseModules: true,
      out: join(dir, 'b2'),
    }).file;
    stickBundle = packRelease({
      root: src,
      keyFile: relKey,
      version: '1.2.0',
      reuseModules: true,
      out: join(dir, 'b3'),
    }).file;
    mkdirSync(join(dir, 'stick'));
    // 1.0.0 installed as the install script lays it out
    const r100 = join(installRoot(), 'releases', '1.0.0');
    mkdirSync(r100, { recursive: true });
    const unpack = spawnSync('sh', ['-c', `tar -xOf "${first.file}" payload.tar.gz | tar -xzf - -C "${r100}"`]);
    expect(unpack.status, String(unpack.stderr)).toBe(0);
    expect(spawnSync('cp', ['-al', join(CHECKOUT, 'node_modules'), join(r100, 'node_modules')]).status).toBe(0);
    spawnSync('ln', ['-s', 'releases/1.0.0', join(installRoot(), 'current')]);
    mkdirSync(join(installRoot(), 'bin'));
    copyFileSync(join(CHECKOUT, 'bin', 'langbiang-prestart.mjs'), join(installRoot(), 'bin', 'langbiang-prestart.mjs'));
    // the download server: the first connection is cut mid-body, the next ones honour Range
    const body = readFileSync(bundle);
    files = http.createServer((req, res) => {
      requests.push(req.headers.range);
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      if (m)
        res.writeHead(206, {
          'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
          'content-length': body.length - start,
        });
      else res.writeHead(200, { 'content-length': body.length });
      if (requests.length === 1) {
        res.write(body.subarray(0, Math.floor(body.length / 3)), () => setTimeout(() => res.socket?.destroy(), 50));
        return;
      }
      res.end(body.subarray(start));
    });
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', () => r()));
    writeFileSync(
      join(dir, 'gateway.yaml'),
      `gateway: { id: ${GW}, dataDir: ${dataDir()}, assumeClockSynced: true }
buses:
  - { id: tcp, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 500ms }
devices:
  - { id: climate-1, profile: xy-md02, bus: tcp, unit: 1, interval: 200ms }
storage: { batchMaxDelay: 100ms }
panel: { port: ${await freePort()}, host: 127.0.0.1 }
sync: { url: "${broker.url}", batchMaxDelay: 200ms, confirm: false }
update: { confirmWindow: 20s }
`,
    );
    l = await listen(broker.url, GW);
  }, 120_000);

  afterAll(async () => {
    supervising = false;
    gw?.kill('SIGKILL');
    await l?.close();
    files?.closeAllConnections();
    files?.close();
    await sim?.close();
    await broker?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('goes from 1.0.0 to 1.1.0 on the city’s order and the roll-out tool reports it confirmed', async () => {
    const city = makeCityKey('city-ops');
    city.pin(dataDir());
    expect(statSync(join(dataDir(), CONTROL_KEYS_DIR, 'city-ops.pem')).isFile()).toBe(true);
    startGateway();
    await waitUntil(() => output.includes('connected to the broker'), 30_000, `the gateway to connect\n${output}`);
    await waitUntil(() => l.seqs().length >= 3, 15_000, 'first readings at the city');
    const before = l.status.at(-1)?.payload;
    expect(before?.version).toBe('1.0.0');

    const fleet = join(dir, 'fleet.txt');
    writeFileSync(fleet, `${GW}\n`);
    const { port } = files.address() as AddressInfo;
    const summary = await runCityUpdate({
      gateways: fleet,
      bundle,
      url: `http://127.0.0.1:${port}/langbiang-1.1.0.lbr`,
      release: '1.1.0',
      key: city.writeFiles(dir).privateFile,
      broker: broker.url,
      stages: '100',
      maxFailures: '0',
      confirmTimeout: '120s',
      state: join(dir, 'rollout.json'),
      quiet: true,
    }).catch((err: unknown) => {
      throw new Error(`${String(err)}\n--- gateway ---\n${output.slice(-4000)}`);
    });
    expect(summary, output.slice(-4000)).toMatchObject({ complete: true, confirmed: 1, failed: 0, timedOut: 0 });

    // the download was cut once and resumed from where it stopped
    expect(requests).toHaveLength(2);
    expect(requests[0]).toBeUndefined();
    expect(Number(/^bytes=(\d+)-$/.exec(requests[1] ?? '')?.[1])).toBeGreaterThan(0);
    // 1.0.0 stopped with the restart code; 1.1.0 runs from `current`
    expect(exits[0]).toBe(75);
    expect(readlinkSync(join(installRoot(), 'current'))).toBe(join('releases', '1.1.0'));
    const outcomes = l.events
      .flatMap((b) => b.events)
      .filter((e) => e.kind === 'update')
      .map((e) => `${e.data.outcome} ${e.data.version ?? ''}`.trim());
    expect(outcomes).toEqual(
      expect.arrayContaining([
        'downloading 1.1.0',
        'downloaded 1.1.0',
        'verified 1.1.0',
        'installed 1.1.0',
        'confirmed 1.1.0',
      ]),
    );
    expect(outcomes.indexOf('downloaded 1.1.0')).toBeLessThan(outcomes.indexOf('installed 1.1.0'));
    await waitUntil(() => l.status.some((s) => s.payload.version === '1.1.0'), 70_000, 'the status of 1.1.0');
    // readings go on under 1.1.0, and no seq is missing across the update
    const n = l.seqs().length;
    await waitUntil(() => l.seqs().length > n + 3, 15_000, 'readings under 1.1.0');
    const seqs = [...new Set(l.seqs())].sort((a, b) => a - b);
    expect(seqs.at(-1)! - seqs[0]! + 1).toBe(seqs.length);
  }, 240_000);

  it('then 1.2.0 from a USB stick: found while running, installed once, the file marked, a restart does not install it again', async () => {
    expect(exits).toHaveLength(1);
    const onStick = join(dir, 'stick', 'langbiang-1.2.0-x64.lbr');
    copyFileSync(stickBundle, onStick);
    // the stick is looked at every 30 s
    await waitUntil(() => exits.length === 2, 60_000, `the gateway to install from the stick\n${output.slice(-3000)}`);
    expect(exits[1]).toBe(75);
    expect(readlinkSync(join(installRoot(), 'current'))).toBe(join('releases', '1.2.0'));
    expect(statSync(`${onStick}.applied`).isFile()).toBe(true);
    const events = () =>
      l.events
        .flatMap((b) => b.events)
        .filter((e) => e.kind === 'update' && e.data.version === '1.2.0')
        .map((e) => `${e.data.outcome} ${e.data.source ?? ''}`.trim());
    await waitUntil(() => events().includes('confirmed usb'), 60_000, '1.2.0 to confirm itself').catch(
      (err: unknown) => {
        throw new Error(`${String(err)}\nevents: ${events().join(', ')}\n--- gateway ---\n${output.slice(-6000)}`);
      },
    );
    expect(events()).toEqual(expect.arrayContaining(['verified usb', 'installed usb', 'confirmed usb']));
    // a read-only stick keeps the file under its name: the hash remembered keeps it from a second install
    copyFileSync(stickBundle, onStick);
    const connects = output.split('connected to the broker').length;
    gw?.kill('SIGTERM');
    await waitUntil(() => exits.length === 3, 20_000, 'the clean stop');
    expect(exits[2]).toBe(0);
    await waitUntil(() => output.split('connected to the broker').length > connects, 30_000, 'the restart');
    await new Promise((r) => setTimeout(r, 3000));
    expect(exits).toHaveLength(3);
    expect(events().filter((e) => e.startsWith('installed'))).toHaveLength(1);
    expect(readlinkSync(join(installRoot(), 'current'))).toBe(join('releases', '1.2.0'));
  }, 180_000);
});
