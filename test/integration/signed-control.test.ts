import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_KEYS_DIR } from '../../gateway/control-keys.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Listener, listen } from '../helpers/mqtt-listener.js';
import { freePort } from '../helpers/ports.js';

// The broker is not a trust boundary: a publisher with rights on the gateway's topics (a leaked
// password, a neighbour's certificate) sends every attack of issue 12, and the city operator uses
// `langbiang city …` with the key pinned on the gateway. Real gateway, real Mosquitto, Modbus TCP
// simulator.
const GW = 'dl-gw-signed';
const SECRET = 'TOP-SECRET-7f3a9c-never-on-the-wire';

describe('signed control plane (real gateway, real Mosquitto)', () => {
  let broker: Mosquitto;
  let second: Mosquitto;
  let sim: ModbusSimulator;
  let dir: string;
  let keys: string;
  let config: string;
  let httpPort: number;
  let gw: RunningCli | null = null;
  let l: Listener;
  let spy: mqtt.MqttClient;
  /** every payload seen on any topic of the broker, as text */
  const wire: string[] = [];

  const base = (extra = '') => `gateway: { id: ${GW}, dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: tcp, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 500ms }
devices:
  - { id: climate-1, profile: xy-md02, bus: tcp, unit: 1, interval: 200ms }
${extra}storage: { batchMaxDelay: 100ms }
panel: { port: ${httpPort}, host: 127.0.0.1 }
sync: { url: "${broker.url}", batchMaxDelay: 200ms, remoteConfig: { watch: 1s } }
`;
  const VALVES = '  - { id: valves, profile: waveshare-modbus-rtu-relay-8ch, bus: tcp, unit: 2, interval: 500ms }\n';
  const configEvents = () =>
    l.events
      .flatMap((b) => b.events)
      .filter((e) => e.kind === 'config')
      .map((e) => e.data as Record<string, unknown>);
  const publishConfig = (payload: string | Buffer) =>
    l.client.publishAsync(`langbiang/v1/${GW}/config`, payload, { qos: 1 });
  const city = (args: string[]) => runCli(['city', ...args], { cwd: dir });
  const health = async () =>
    (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`, { signal: AbortSignal.timeout(3000) })).json()) as {
      lastSeq: number;
    };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lb-signed-'));
    broker = await startMosquitto();
    second = await startMosquitto();
    sim = await ModbusSimulator.tcp({
      units: [
        { unit: 1, profile: loadProfile('xy-md02') },
        { unit: 2, profile: loadProfile('waveshare-modbus-rtu-relay-8ch') },
      ],
    });
    httpPort = await freePort();
    writeFileSync(join(dir, 'secret.txt'), `${SECRET}\n`);
    // what an attacker's NODE_OPTIONS would load: it leaves a mark if it ever runs
    writeFileSync(join(dir, 'evil.cjs'), `require('fs').writeFileSync(${JSON.stringify(join(dir, 'PWNED'))}, 'x');\n`);
    // the city's key, made with the CLI; its public half pinned as the provisioning import does
    keys = join(dir, 'keys');
    const kg = await runCli(['city', 'keygen', 'city-ops', '--out', keys]);
    expect(kg.code, kg.stderr).toBe(0);
    mkdirSync(join(dir, 'data', CONTROL_KEYS_DIR), { recursive: true });
    cpSync(join(keys, 'city-ops.pem'), join(dir, 'data', CONTROL_KEYS_DIR, 'city-ops.pem'));
    config = join(dir, 'gateway.yaml');
    writeFileSync(config, base());
    l = await listen(broker.url, GW);
    spy = await mqtt.connectAsync(broker.url, { clientId: `spy-${process.pid}` });
    spy.on('message', (_t, p) => wire.push(p.toString('latin1')));
    await spy.subscribeAsync('#', { qos: 1 });
    gw = startCli(['start', '--config', config]);
    await gw.waitFor('connected to the broker', 20_000);
    await waitUntil(() => l.seqs().length >= 5, 15_000, 'first readings at the city');
    await new Promise((r) => setTimeout(r, 300)); // the agent's subscriptions
  }, 60_000);

  afterAll(async () => {
    gw?.child.kill('SIGKILL');
    await spy?.endAsync(true);
    await l?.close();
    await sim?.close();
    await broker?.close();
    await second?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the city CLI refuses bad input with one clear line and keeps secrets out of argv', async () => {
    const key = join(keys, 'city-ops.key');
    const again = await runCli(['city', 'keygen', 'city-ops', '--out', keys]);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(`langbiang: ${join(keys, 'city-ops.key')} exists; a key is never overwritten`);
    const pw = await city([
      'command',
      '--gateway',
      GW,
      '--key',
      key,
      '--broker',
      'mqtt://u:secret@127.0.0.1:1',
      'd',
      'p',
      '1',
    ]);
    expect(pw.code).toBe(1);
    expect(pw.stderr.trim()).toBe(
      'langbiang: do not put a password in --broker; use --password-file or --password-stdin',
    );
    const notKey = await city(['config', '--gateway', GW, '--key', join(keys, 'city-ops.pem'), config]);
    expect(notKey.code).toBe(1);
    expect(notKey.stderr).toMatch(/city-ops\.pem is not a usable Ed25519 private key/);
    expect(notKey.stderr).not.toMatch(/\n\s+at /);
    const late = await city(['command', '--gateway', GW, '--key', key, '--deadline', '2h', 'd', 'p', '1']);
    expect(late.code).toBe(1);
    expect(late.stderr.trim()).toBe(
      'langbiang: --deadline may be at most 1h (a command is for now; a gateway refuses a longer lead)',
    );
    const out = await city(['command', '--gateway', GW, '--key', key, 'd', 'p', '1']);
    expect(out.code).toBe(0); // no --broker: the signed message is written out
    expect(JSON.parse(out.stdout)).toMatchObject({ v: 1, key: 'city-ops' });
  });

  it('the city CLI logs in to a broker with a password from stdin or a file, never from argv', async () => {
    const locked = await startMosquitto({ password: { user: 'city', pass: 'pw-from-stdin-1' } });
    try {
      const key = join(keys, 'city-ops.key');
      const args = [
        'config',
        '--gateway',
        'dl-gw-elsewhere',
        '--key',
        key,
        '--broker',
        locked.url,
        '--username',
        'city',
      ];
      const ok = await runCli(['city', ...args, '--password-stdin', config], { input: 'pw-from-stdin-1\n' });
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/published, signed by city-ops/);
      writeFileSync(join(dir, 'pw'), 'pw-from-stdin-1\n', { mode: 0o600 });
      const fromFile = await runCli(['city', ...args, '--password-file', join(dir, 'pw'), config]);
      expect(fromFile.code, fromFile.stderr).toBe(0);
      const wrong = await runCli(['city', ...args, '--password-stdin', config], { input: 'nope\n' });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/^langbiang: cannot connect to the broker: /);
      expect(wrong.stderr).not.toContain('nope');
    } finally {
      await locked.close();
    }
  });

  it('says at start which keys are pinned', () => {
    expect(
      gw!
        .output()
        .split('\n')
        .find((line) => line.includes('city keys pinned')),
    ).toContain('"keys":["city-ops"]');
  });

  it('a publisher without the key: every attack refused with an event, nothing runs, nothing leaks, polling and sync go on', async () => {
    const seqBefore = Math.max(...l.seqs());
    const relayWrites = sim.stats(2).writes;
    const unsigned = (version: number, text: string) => JSON.stringify({ v: 1, version, config: text });
    const attacks = [
      // code execution when Node-RED starts
      unsigned(
        1000,
        base().replace(
          'storage:',
          `flows: { enabled: true, env: { NODE_OPTIONS: "--require=${join(dir, 'evil.cjs')}" } }\nstorage:`,
        ),
      ),
      // file theft through a refused config's event
      unsigned(1001, `${base()}log: { level: !file ${join(dir, 'secret.txt')} }\n`),
      // hijack: another broker, with a file of the gateway's as the password
      unsigned(
        1002,
        base().replace(
          `url: "${broker.url}"`,
          `url: "${second.url}", username: x, passwordFile: ${join(dir, 'secret.txt')}`,
        ),
      ),
      // the quadratic size parser
      unsigned(1003, base().replace('storage:', `flows: { maxHeap: "1${' '.repeat(200_000)}!" }\nstorage:`)),
      // a version that would block every later config
      unsigned(2 ** 53 - 1, base()),
      // too big to be read at all: its refusal is still recorded
      unsigned(1004, `${base()}# ${'x'.repeat(700_000)}\n`),
    ];
    for (const a of attacks) await publishConfig(a);
    // a command with an actor of its choosing and no signature
    await l.client.publishAsync(
      `langbiang/v1/${GW}/cmd`,
      JSON.stringify({
        id: 'city-1',
        device: 'valves',
        point: 'relay_1',
        value: true,
        actor: 'city-ops',
        deadline: Date.now() + 60_000,
      }),
      { qos: 1 },
    );
    await waitUntil(() => configEvents().length >= attacks.length, 15_000, 'a config event per attack');
    expect(configEvents().map((e) => [e.outcome, e.reason, e.version])).toEqual([
      ...attacks.slice(0, -1).map(() => ['refused', 'unsigned', null]),
      ['refused', 'malformed', null],
    ]);
    expect(configEvents().at(-1)!.problems).toEqual([
      expect.stringMatching(/^config message too large \(\d+ bytes, at most 524288\)$/),
    ]);
    const cmdResult = await waitUntil(() => l.results.find((r) => r.id === 'city-1'), 10_000, 'the command result');
    expect(cmdResult).toMatchObject({
      ok: false,
      code: 'UNTRUSTED',
      message: expect.stringMatching(/^refused \(unsigned\)/),
    });
    const refusedEvent = await waitUntil(
      () => l.events.flatMap((b) => b.events).find((e) => e.kind === 'refused'),
      10_000,
      'the refused event of the command',
    );
    expect(refusedEvent.data).toMatchObject({ topic: 'cmd', id: 'city-1', reason: 'unsigned' });

    // the gateway answered all along and goes on polling and syncing
    expect((await health()).lastSeq).toBeGreaterThan(0);
    await waitUntil(() => Math.max(...l.seqs()) > seqBefore + 10, 10_000, 'telemetry still flowing');
    expect(gw!.child.exitCode).toBeNull();
    expect(sim.stats(2).writes).toBe(relayWrites);
    expect(existsSync(join(dir, 'PWNED'))).toBe(false);
    expect(second.log()).not.toMatch(/New client connected/);
    expect(wire.some((p) => p.includes(SECRET))).toBe(false);
  }, 60_000);

  it('the city key: a config and a command made with the CLI are applied end to end; tampered, replayed and expired ones are refused with an event', async () => {
    const next = join(dir, 'next.yaml');
    writeFileSync(next, base(VALVES));
    const key = join(keys, 'city-ops.key');
    const conf = await city([
      'config',
      '--gateway',
      GW,
      '--key',
      key,
      '--broker',
      broker.url,
      '--config-version',
      '5',
      next,
    ]);
    expect(conf.code, conf.stderr).toBe(0);
    expect(conf.stdout).toMatch(/config version 5 for dl-gw-signed published, signed by city-ops/);
    const applied = await waitUntil(
      () => configEvents().find((e) => e.version === 5),
      20_000,
      'the config event of version 5',
    );
    expect(applied, gw!.output().slice(-2000)).toMatchObject({ outcome: 'applied', actor: 'city-ops', source: 'mqtt' });

    const cmd = await city([
      'command',
      '--gateway',
      GW,
      '--key',
      key,
      '--broker',
      broker.url,
      'valves',
      'relay_1',
      'true',
    ]);
    expect(cmd.code, cmd.stderr + cmd.stdout).toBe(0);
    expect(JSON.parse(cmd.stdout)).toMatchObject({ ok: true, readBack: 1 });
    expect(sim.getValue(2, 'relay_1')).toBe(1);
    const audit = await waitUntil(
      () => l.events.flatMap((b) => b.events).find((e) => e.kind === 'command' && e.data.point === 'relay_1'),
      10_000,
      'the command audit',
    );
    expect(audit.data).toMatchObject({ source: 'mqtt', actor: 'city-ops', result: { ok: true } });

    // signed messages written to files, published by hand
    const out = async (name: string, args: string[]) => {
      const file = join(dir, name);
      const r = await city([...args, '--gateway', GW, '--key', key, '--out', file]);
      expect(r.code, r.stderr).toBe(0);
      return readFileSync(file);
    };
    writeFileSync(next, base(VALVES).replace('interval: 500ms', 'interval: 700ms'));
    const v6 = await out('v6.json', ['config', '--config-version', '6', next]);
    writeFileSync(next, base(VALVES).replace('interval: 500ms', 'interval: 900ms'));
    const v7 = await out('v7.json', ['config', '--config-version', '7', next]);
    const v8 = await out('v8.json', ['config', '--config-version', '8', '--expires', '1s', next]);

    // one byte of the signed body changed
    const env = JSON.parse(v6.toString());
    const body = Buffer.from(env.body, 'base64');
    const at = body.indexOf('interval: 700ms') + 'interval: '.length;
    body[at] = '1'.charCodeAt(0);
    await publishConfig(JSON.stringify({ ...env, body: body.toString('base64') }));
    await waitUntil(() => configEvents().find((e) => e.reason === 'bad_signature'), 10_000, 'the tampered one refused');

    await publishConfig(v6);
    await waitUntil(() => configEvents().find((e) => e.version === 6), 20_000, 'v6 applied');
    await publishConfig(v7);
    await waitUntil(() => configEvents().find((e) => e.version === 7), 20_000, 'v7 applied');
    await publishConfig(v6); // replayed
    await waitUntil(() => configEvents().find((e) => e.reason === 'replayed'), 10_000, 'the replay refused');
    await new Promise((r) => setTimeout(r, 1200));
    await publishConfig(v8); // expired
    await waitUntil(() => configEvents().find((e) => e.reason === 'expired'), 10_000, 'the expired one refused');

    const all = configEvents();
    const signedEvents = all.slice(all.findIndex((e) => e.version === 5));
    expect(signedEvents.map((e) => [e.outcome, e.reason ?? null, e.version])).toEqual([
      ['applied', null, 5],
      ['refused', 'bad_signature', null],
      ['applied', null, 6],
      ['applied', null, 7],
      ['refused', 'replayed', 6],
      ['refused', 'expired', null],
    ]);

    // commands: a replay runs once; an expired one does not run
    const writes = sim.stats(2).writes;
    const c1 = await out('c1.json', ['command', '--id', 'c-replay', 'valves', 'relay_1', 'false']);
    const c2 = await out('c2.json', ['command', '--id', 'c-late', '--deadline', '1s', 'valves', 'relay_1', 'true']);
    const cmdTopic = `langbiang/v1/${GW}/cmd`;
    await l.client.publishAsync(cmdTopic, c1, { qos: 1 });
    await waitUntil(() => l.results.find((r) => r.id === 'c-replay'), 10_000, 'c-replay result');
    await l.client.publishAsync(cmdTopic, c1, { qos: 1 });
    await waitUntil(() => l.results.filter((r) => r.id === 'c-replay').length === 2, 10_000, 'the replay result');
    expect(l.results.filter((r) => r.id === 'c-replay').map((r) => [r.ok, r.duplicate ?? false])).toEqual([
      [true, false],
      [true, true],
    ]);
    expect(sim.stats(2).writes).toBe(writes + 1);
    await new Promise((r) => setTimeout(r, 1200));
    await l.client.publishAsync(cmdTopic, c2, { qos: 1 });
    expect(await waitUntil(() => l.results.find((r) => r.id === 'c-late'), 10_000, 'c-late result')).toMatchObject({
      ok: false,
      code: 'UNTRUSTED',
      message: expect.stringMatching(/^refused \(expired\)/),
    });
    expect(sim.getValue(2, 'relay_1')).toBe(0);
  }, 90_000);

  it('even signed, a config is bounded: no NODE_OPTIONS, no !file, a huge value refused fast with a short problem', async () => {
    const key = join(keys, 'city-ops.key');
    const send = async (version: number, text: string) => {
      const file = join(dir, `bounded-${version}.yaml`);
      writeFileSync(file, text);
      const r = await city([
        'config',
        '--gateway',
        GW,
        '--key',
        key,
        '--broker',
        broker.url,
        '--config-version',
        String(version),
        file,
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(`config version ${version} for`);
    };
    await send(
      20,
      base(VALVES).replace(
        'storage:',
        `flows: { enabled: true, env: { NODE_OPTIONS: "--require=${join(dir, 'evil.cjs')}" } }\nstorage:`,
      ),
    );
    await send(21, `${base(VALVES)}log: { level: !file ${join(dir, 'secret.txt')} }\n`);
    await send(22, base(VALVES).replace('storage:', `flows: { maxHeap: "1${' '.repeat(200_000)}!" }\nstorage:`));
    await waitUntil(() => configEvents().find((e) => e.version === 22), 15_000, 'the three refusals');
    const [e20, e21, e22] = [20, 21, 22].map((v) => configEvents().find((e) => e.version === v)!);
    expect(e20).toMatchObject({ outcome: 'refused', problems: [expect.stringMatching(/^flows\.env\.NODE_OPTIONS: /)] });
    expect(e21).toMatchObject({
      outcome: 'refused',
      problems: [expect.stringMatching(/^log\.level: !file is only allowed/)],
    });
    expect(e22).toMatchObject({
      outcome: 'refused',
      problems: [expect.stringMatching(/^flows\.maxHeap: .*is not a size/)],
    });
    expect(String((e22.problems as string[])[0]).length).toBeLessThan(300);

    // 200,000 characters in a duration, a key, a schedule time: each refused at once, polling on
    const long = [
      base(VALVES).replace('batchMaxDelay: 200ms', `batchMaxDelay: "1${' 1s'.repeat(66_000)}!"`),
      base(VALVES).replace('storage:', `log: { ${'k'.repeat(200_000)}: 1 }\nstorage:`),
      base(VALVES).replace(
        'storage:',
        `cabinets:\n  - { id: street-1, contactor: { device: valves, point: relay_1 }, schedule: { on: "sunset${' '.repeat(200_000)}!" } }\nstorage:`,
      ),
    ];
    const seqBefore = (await health()).lastSeq;
    for (const [i, text] of long.entries()) await send(30 + i, text);
    await waitUntil(() => configEvents().find((e) => e.version === 32), 15_000, 'the long-value refusals');
    for (const v of [30, 31, 32]) {
      const e = configEvents().find((x) => x.version === v)!;
      expect(e.outcome).toBe('refused');
      for (const p of e.problems as string[]) expect(p.length).toBeLessThan(300);
    }
    await waitUntil(async () => (await health()).lastSeq > seqBefore + 5, 10_000, 'polling goes on');

    // a later good config is still applied
    writeFileSync(join(dir, 'later.yaml'), base());
    const later = await city([
      'config',
      '--gateway',
      GW,
      '--key',
      key,
      '--broker',
      broker.url,
      '--config-version',
      '40',
      join(dir, 'later.yaml'),
    ]);
    expect(later.code, later.stderr).toBe(0);
    expect(await waitUntil(() => configEvents().find((e) => e.version === 40), 20_000, 'v40')).toMatchObject({
      outcome: 'applied',
    });
    expect(existsSync(join(dir, 'PWNED'))).toBe(false);
    expect(wire.some((p) => p.includes(SECRET))).toBe(false);
    const seq = (await health()).lastSeq;
    await waitUntil(async () => (await health()).lastSeq > seq + 5, 10_000, 'polling goes on');
  }, 60_000);

  it('a gateway with no key pinned says so at start and refuses even a signed config and command', async () => {
    const GW2 = 'dl-gw-unpinned';
    const dir2 = join(dir, 'unpinned');
    mkdirSync(dir2);
    const file = join(dir2, 'gateway.yaml');
    const port2 = await freePort();
    writeFileSync(
      file,
      `gateway: { id: ${GW2}, dataDir: ${dir2}/data, assumeClockSynced: true }\nbuses: []\ndevices: []\npanel: { port: ${port2}, host: 127.0.0.1 }\nsync: { url: "${broker.url}", batchMaxDelay: 200ms }\n`,
    );
    const l2 = await listen(broker.url, GW2);
    const gw2 = startCli(['start', '--config', file]);
    try {
      await gw2.waitFor('no city key is pinned: configs and commands from the city over MQTT will be refused', 20_000);
      await gw2.waitFor('connected to the broker', 20_000);
      await new Promise((r) => setTimeout(r, 300));
      const key = join(keys, 'city-ops.key');
      const conf = await city(['config', '--gateway', GW2, '--key', key, '--broker', broker.url, '--no-retain', file]);
      expect(conf.code, conf.stderr).toBe(0);
      const cmd = await city(['command', '--gateway', GW2, '--key', key, '--broker', broker.url, 'x', 'y', '1']);
      expect(cmd.code).toBe(1);
      expect(JSON.parse(cmd.stdout)).toMatchObject({
        ok: false,
        code: 'UNTRUSTED',
        message: expect.stringMatching(/^refused \(no_pinned_key\)/),
      });
      const refused = await waitUntil(
        () => l2.events.flatMap((b) => b.events).find((e) => e.kind === 'config'),
        10_000,
        'the config refusal',
      );
      expect(refused.data).toMatchObject({ outcome: 'refused', reason: 'no_pinned_key' });
    } finally {
      gw2.child.kill('SIGKILL');
      await l2.close();
    }
  }, 60_000);
});
