import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openReceiverStore, type ReceiverStore } from '../../cloud-sync/receiver/index.js';
import { CONFIRMED_CURSOR, Store } from '../../gateway/store/index.js';
import { packRelease } from '../../gateway/update/pack.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type NotifyReceiver, startNotifyReceiver } from '../helpers/notify-receiver.js';
import { freePort } from '../helpers/ports.js';
import { UpdateSupervisor } from '../helpers/update-supervisor.js';

/**
 * Updates end to end, with real processes: releases packed from this checkout (bundles without
 * node_modules, reusing the installed release's), installed with `langbiang update apply` into a
 * temporary install root, run by a supervisor that does what the systemd unit does (pre-start
 * check, Restart=always, WatchdogSec on a real notify socket, the stop hook), a real Mosquitto and
 * a `langbiang receiver` attached throughout, a simulated Modbus meter polled all along.
 */
const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));

let dir: string;
let broker: Mosquitto;
let notify: NotifyReceiver;
let sim: ModbusSimulator;
let receiver: RunningCli;
let cityStore: ReceiverStore;
let sup: UpdateSupervisor | null = null;

beforeAll(async () => {
  // on the checkout's file system, so releases can hard-link node_modules
  dir = mkdtempSync(join(tmpdir(), 'lb-update-'));
  [broker, notify] = await Promise.all([startMosquitto(), startNotifyReceiver(join(dir, 'notify.sock'))]);
  sim = await ModbusSimulator.tcp({ units: [{ unit: 1, profile: loadProfile('eastron-sdm120') }] });
}, 60_000);

afterAll(async () => {
  sup?.kill();
  receiver?.child.kill('SIGKILL');
  // each part gets a bounded time, and a part that does not close is named
  const bounded = async (what: string, p: Promise<unknown> | undefined) => {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise((r) => {
      t = setTimeout(() => r(`${what} did not close`), 5_000);
    });
    const r = await Promise.race([p, timeout]);
    clearTimeout(t);
    if (typeof r === 'string' && r.endsWith('did not close')) console.warn(r);
  };
  await bounded('receiver', receiver?.exited);
  await bounded('city store', cityStore?.close());
  await bounded('simulator', sim?.close());
  await bounded('broker', broker?.close());
  notify?.close();
  // rm(1) takes the releases' hard-linked node_modules trees several times faster than rmSync
  if (dir) spawnSync('rm', ['-rf', dir]);
}, 40_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A copy of this checkout (hard links) to pack from; `bin` replaces bin/langbiang.js, the original kept as bin/langbiang-real.js. */
function checkoutCopy(name: string, bin?: string): string {
  const root = join(dir, 'src', name);
  mkdirSync(root, { recursive: true });
  const pkg = JSON.parse(readFileSync(join(CHECKOUT, 'package.json'), 'utf8')) as { files: string[] };
  for (const entry of [...pkg.files, 'package.json', 'package-lock.json']) {
    const top = entry.split('/')[0]!;
    if (statSafe(join(root, top))) continue;
    const r = spawnSync('cp', ['-al', join(CHECKOUT, top), join(root, top)]);
    if (r.status !== 0) throw new Error(`cp -al ${top}: ${r.stderr}`);
  }
  if (bin) {
    // never write through a hard link into the checkout: replace the file
    rmSync(join(root, 'bin', 'langbiang.js'));
    copyFileSync(join(CHECKOUT, 'bin', 'langbiang.js'), join(root, 'bin', 'langbiang-real.js'));
    writeFileSync(join(root, 'bin', 'langbiang.js'), bin);
  }
  return root;
}

function statSafe(p: string) {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}

describe('updates: confirm a good release, roll back bad ones, refuse bad bundles; every reading exactly once', () => {
  it('installs, confirms, rolls back (crash, hang, unhealthy) and refuses (signature, truncated, downgrade)', async () => {
    const installRoot = join(dir, 'opt');
    const dataDir = join(dir, 'data');
    const keys = join(dir, 'keys');
    mkdirSync(keys);
    mkdirSync(join(dataDir, 'trust', 'release'), { recursive: true });
    const release = generateKeyPairSync('ed25519');
    const other = generateKeyPairSync('ed25519');
    writeFileSync(join(keys, 'rel.key'), release.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(join(keys, 'rel.pem'), release.publicKey.export({ type: 'spki', format: 'pem' }));
    // another key with the name of the pinned one
    mkdirSync(join(keys, 'other'));
    writeFileSync(join(keys, 'other', 'rel.key'), other.privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
    copyFileSync(join(keys, 'rel.pem'), join(dataDir, 'trust', 'release', 'rel.pem'));
    const bundles = join(dir, 'bundles');
    const pack = (version: string, root: string, keyFile = join(keys, 'rel.key'), out = bundles) =>
      packRelease({ root, keyFile, version, reuseModules: true, out }).file;

    // The installed release 1.0.0, laid out as deploy/install-pi.sh does: releases/1.0.0 with its
    // node_modules, current -> releases/1.0.0, the pre-start check in bin/.
    const plain = checkoutCopy('plain');
    const first = pack('1.0.0', plain, join(keys, 'rel.key'), join(dir, 'first'));
    const r100 = join(installRoot, 'releases', '1.0.0');
    mkdirSync(r100, { recursive: true });
    const unpack = spawnSync('sh', ['-c', `tar -xOf "${first}" payload.tar.gz | tar -xzf - -C "${r100}"`]);
    expect(unpack.status, String(unpack.stderr)).toBe(0);
    expect(spawnSync('cp', ['-al', join(CHECKOUT, 'node_modules'), join(r100, 'node_modules')]).status).toBe(0);
    spawnSync('ln', ['-s', 'releases/1.0.0', join(installRoot, 'current')]);
    mkdirSync(join(installRoot, 'bin'));
    copyFileSync(join(CHECKOUT, 'bin', 'langbiang-prestart.mjs'), join(installRoot, 'bin', 'langbiang-prestart.mjs'));

    const port = await freePort();
    const config = join(dir, 'config.yaml');
    const writeConfig = (polling: boolean) =>
      writeFileSync(
        config,
        [
          `gateway: { id: upd-gw, dataDir: ${dataDir}, assumeClockSynced: true }`,
          'buses:',
          `  - { id: field, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 300ms }`,
          'devices:',
          `  - { id: meter-1, profile: eastron-sdm120, bus: field, unit: 1, interval: 300ms, enabled: ${polling} }`,
          'storage: { batchMaxDelay: 100ms }',
          `sync: { url: ${broker.url}, batchMaxDelay: 200ms, confirmTimeout: 3s }`,
          `panel: { port: ${port}, host: 127.0.0.1 }`,
          'update: { confirmWindow: 8s }',
          '',
        ].join('\n'),
      );
    writeConfig(true);
    const cityDb = join(dir, 'city.db');
    receiver = startCli([
      'receiver',
      '--broker',
      broker.url,
      '--db',
      cityDb,
      '--client-id',
      'recv-upd',
      '--stats-interval',
      '0',
    ]);
    await receiver.waitFor('receiver subscribed', 20_000);
    cityStore = await openReceiverStore(cityDb, { readonly: true });

    sup = new UpdateSupervisor({
      installRoot,
      dataDir,
      config,
      notify,
      // short enough for a quick test, long enough that a busy 2-core machine never misses one by accident
      watchdogMs: 6_000,
      startTimeoutMs: 20_000,
      restartMs: 300,
    });
    sup.start();
    const s = sup;
    await s.waitFor(() => /polling started/.test(s.running?.output ?? ''), 30_000, 'release 1.0.0 polling');
    await waitUntil(async () => (await cityStore.counts()).readings > 0, 20_000, 'the first readings at the city');

    const health = async () =>
      (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as {
        version: string;
        update: {
          running: string;
          previous: string | null;
          last?: { outcome: string; version: string; reason?: string };
        };
        buses: { devices: { state: string }[] }[];
      };
    const current = () => readlinkSync(join(installRoot, 'current'));
    const state = () => JSON.parse(readFileSync(join(dataDir, 'update', 'state.json'), 'utf8'));
    const events = () => {
      const st = Store.open({ dataDir, readonly: true });
      try {
        return st
          .eventsAfter(0, 10_000)
          .filter((e) => e.kind === 'update')
          .map((e) => e.data as { outcome: string; version?: string; reason?: string });
      } finally {
        st.close();
      }
    };
    const apply = (file: string, ...extra: string[]) =>
      runCli(
        [
          'update',
          'apply',
          file,
          '--data-dir',
          dataDir,
          '--install-root',
          installRoot,
          '--no-restart',
          '--url',
          `http://127.0.0.1:${port}`,
          ...extra,
        ],
        { timeoutMs: 60_000 },
      );
    const healthyNow = async () => (await health()).buses[0]!.devices[0]!.state === 'ok';
    await waitUntil(healthyNow, 20_000, 'meter-1 ok under 1.0.0');
    expect((await health()).version).toBe('1.0.0');

    // 1. A good release: installed, started, healthy within the window → confirmed.
    const good = await apply(pack('1.1.0', plain));
    expect(good.code, good.stderr).toBe(0);
    expect(current()).toBe('releases/1.1.0');
    expect(state().pending.baseline).toEqual({ devices: ['meter-1'], sync: true });
    await s.restart();
    await waitUntil(() => state().last?.outcome === 'confirmed', 30_000, '1.1.0 confirmed').catch((e) => {
      throw new Error(`${(e as Error).message}\n${s.describe()}`);
    });
    expect(s.running?.release).toBe('1.1.0');
    const h11 = await health();
    expect(h11.version).toBe('1.1.0');
    expect(h11.update).toMatchObject({
      running: '1.1.0',
      previous: '1.0.0',
      last: { outcome: 'confirmed', version: '1.1.0' },
    });
    await waitUntil(
      () => events().some((e) => e.outcome === 'confirmed' && e.version === '1.1.0'),
      10_000,
      'the confirmed event',
    );
    expect(events().some((e) => e.outcome === 'installed' && e.version === '1.1.0')).toBe(true);
    // the confirmed release's pre-start check is the installed one now
    expect(readFileSync(join(installRoot, 'bin', 'langbiang-prestart.mjs'), 'utf8')).toBe(
      readFileSync(join(CHECKOUT, 'bin', 'langbiang-prestart.mjs'), 'utf8'),
    );

    const rollback = async (version: string, reason: string) => {
      await waitUntil(
        () => state().last?.outcome === 'rolled-back' && state().last?.version === version,
        60_000,
        `${version} rolled back`,
      ).catch((e) => {
        throw new Error(`${(e as Error).message}\n${s.describe()}`);
      });
      expect(state().last.reason).toBe(reason);
      expect(current()).toBe('releases/1.1.0');
      await s.waitFor(
        () => s.running?.release === '1.1.0' && /polling started/.test(s.running.output),
        30_000,
        '1.1.0 back',
      );
      await waitUntil(
        () => events().some((e) => e.outcome === 'rolled-back' && e.version === version && e.reason === reason),
        15_000,
        `the rolled-back event of ${version}`,
      );
      const h = await health();
      expect(h.version).toBe('1.1.0');
      expect(h.update.last).toMatchObject({ outcome: 'rolled-back', version, reason });
    };

    // 2. A release that crashes at start: three starts, then back to 1.1.0.
    const crashing = await apply(pack('1.2.0', checkoutCopy('crash', "throw new Error('release 1.2.0 is broken');\n")));
    expect(crashing.code, crashing.stderr).toBe(0);
    let before = s.starts.length;
    await s.restart();
    await rollback('1.2.0', 'crashed');
    expect(
      s.starts
        .slice(before)
        .filter((r) => r.release === '1.2.0')
        .map((r) => r.result),
      s.describe(),
    ).toEqual(['exit-code', 'exit-code', 'exit-code']);

    // 3. A release that hangs: it says READY, then never pings the watchdog; killed, three times.
    const hangBin = [
      "import { spawnSync } from 'node:child_process';",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the release's own code, written out
      "spawnSync('systemd-notify', ['--ready', `--pid=${process.pid}`]);",
      'setInterval(() => {}, 60_000);',
      '',
    ].join('\n');
    const hanging = await apply(pack('1.3.0', checkoutCopy('hang', hangBin)));
    expect(hanging.code, hanging.stderr).toBe(0);
    before = s.starts.length;
    await s.restart();
    await rollback('1.3.0', 'hung');
    expect(
      s.starts
        .slice(before)
        .filter((r) => r.release === '1.3.0')
        .map((r) => r.result),
      s.describe(),
    ).toEqual(['watchdog', 'watchdog', 'watchdog']);

    // 4. A release that starts but never becomes healthy: its Modbus connections go nowhere.
    const unhealthyBin = [
      "import net from 'node:net';",
      'const connect = net.Socket.prototype.connect;',
      'net.Socket.prototype.connect = function (...args) {',
      `  if (args[0] && typeof args[0] === 'object' && Number(args[0].port) === ${sim.port}) args[0] = { ...args[0], port: 9 };`,
      '  return connect.apply(this, args);',
      '};',
      "await import('./langbiang-real.js');",
      '',
    ].join('\n');
    const unhealthy = await apply(pack('1.4.0', checkoutCopy('unhealthy', unhealthyBin)));
    expect(unhealthy.code, unhealthy.stderr).toBe(0);
    before = s.starts.length;
    await s.restart();
    await rollback('1.4.0', 'unhealthy');
    const tries = s.starts.slice(before).filter((r) => r.release === '1.4.0');
    expect(tries.length).toBe(1); // it had its whole window: no second try
    expect(tries[0]!.output).toContain('did not become healthy in time');
    expect(tries[0]!.output).toContain('device meter-1 answered before the update');

    // 5. Bundles refused before anything is installed; the gateway keeps running as it was.
    const pid = s.running!.pid;
    const forged = pack('1.5.0', plain, join(keys, 'other', 'rel.key'), join(dir, 'forged'));
    const truncated = join(dir, 'truncated.lbr');
    copyFileSync(pack('1.6.0', plain), truncated);
    truncateSync(truncated, Math.floor(statSync(truncated).size / 2));
    const older = pack('1.0.5', plain);
    const refusals: [string, string, RegExp][] = [
      [forged, 'UPDATE_BAD_SIGNATURE', /signature does not match/],
      [truncated, 'UPDATE_CORRUPT', /truncated/],
      [older, 'UPDATE_DOWNGRADE', /older than the running 1\.1\.0/],
    ];
    for (const [file, code, message] of refusals) {
      const r = await apply(file);
      expect(r.code, r.stdout).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /); // one sentence, no stack
      expect(current()).toBe('releases/1.1.0');
      await waitUntil(
        () => events().some((e) => e.outcome === 'refused' && e.reason === code),
        15_000,
        `refused ${code}`,
      );
    }
    expect(s.running?.pid, s.describe()).toBe(pid);
    expect(statSafe(join(installRoot, 'releases', '1.5.0'))).toBeNull();
    expect(statSafe(join(installRoot, 'releases', '1.6.0'))).toBeNull();
    expect((await health()).update.last).toMatchObject({ outcome: 'refused', reason: 'UPDATE_DOWNGRADE' });
    // the status a technician reads, and the one the city sees (retained)
    const st = await runCli(['update', 'status', '--data-dir', dataDir, '--install-root', installRoot]);
    expect(st.stdout).toContain('software 1.1.0, previous 1.0.0');
    const status = await runCli(['status', '--url', `http://127.0.0.1:${port}`]);
    expect(status.stdout).toMatch(
      /software 1\.1\.0, previous 1\.0\.0\nlast update: 1\.0\.5 refused \(UPDATE_DOWNGRADE\)/,
    );
    const mqtt = (await import('mqtt')).default;
    const city = await mqtt.connectAsync(broker.url);
    const retained = new Promise<{ version: string; update?: { previous: string | null } }>((resolve) =>
      city.on('message', (_t, p) => resolve(JSON.parse(p.toString()))),
    );
    await city.subscribeAsync('langbiang/v1/upd-gw/status');
    expect(await retained).toMatchObject({ version: '1.1.0', update: { previous: '1.0.0' } });
    await city.endAsync();

    // 6. Every reading exactly once at the city: polling off, the city catches up, exports compared.
    await s.stop();
    writeConfig(false);
    s.start();
    const held = () => {
      const g = Store.open({ dataDir, readonly: true });
      try {
        return { ...g.stats(), confirmed: g.getCursor(CONFIRMED_CURSOR) };
      } finally {
        g.close();
      }
    };
    await waitUntil(
      async () => {
        const h = held();
        return (await cityStore.counts()).readings >= h.readings && h.confirmed >= h.lastSeq;
      },
      60_000,
      'the city to hold and confirm every reading',
    );
    await sleep(500);
    await s.stop();
    const h = held();
    expect(h.gaps).toBe(0);
    expect(h.readings).toBeGreaterThan(50);
    const atGateway = await runCli(['export', '--data-dir', dataDir]);
    const atCity = await runCli(['export', '--receiver-db', cityDb]);
    expect(atGateway.code, atGateway.stderr).toBe(0);
    expect(atCity.code, atCity.stderr).toBe(0);
    const gl = atGateway.stdout.trimEnd().split('\n');
    const cl = atCity.stdout.trimEnd().split('\n');
    expect(cl.length - 1).toBe(h.readings);
    expect(cl.slice(1)).toEqual(gl.slice(1).map((l) => `upd-gw,${l}`));
    // two releases kept: the running one and the one before it
    expect(
      spawnSync('ls', [join(installRoot, 'releases')], { encoding: 'utf8' })
        .stdout.trim()
        .split('\n')
        .sort(),
    ).toEqual(expect.arrayContaining(['1.0.0', '1.1.0']));
  }, 240_000);
});
