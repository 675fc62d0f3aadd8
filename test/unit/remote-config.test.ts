import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type GatewayConfig, parseConfigText } from '../../gateway/config/index.js';
import type { BusHealth } from '../../gateway/core/driver.js';
import {
  type ApplyTarget,
  ConfigApplier,
  effectiveConfig,
  parseConfigMessage,
  RemoteConfigFiles,
} from '../../gateway/remote-config/index.js';

const log = pino({ level: 'silent' });
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-rc-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const yaml = (extra = '') => `gateway: { id: gw-1, dataDir: ${dir}/data }\n${extra}`;
const TCP_BUS = 'buses:\n  - { id: tcp, type: modbus-tcp, host: 127.0.0.1, port: 1502 }\n';
function cfg(text: string): GatewayConfig {
  const r = parseConfigText(text, { baseDir: dir });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.config;
}

/** A gateway runner whose bus health the test sets; swaps are recorded, and can be made to fail. */
class FakeTarget implements ApplyTarget {
  swaps: GatewayConfig[] = [];
  events: { kind: string; data: Record<string, unknown> }[] = [];
  health: BusHealth[] = [];
  failSwapTo: ((c: GatewayConfig) => boolean) | null = null;
  constructor(public runningConfig: GatewayConfig) {}
  get current() {
    return {
      busHealth: () => this.health,
      sync: null,
      store: { recordEvent: (kind: 'config', data: Record<string, unknown>) => this.events.push({ kind, data }) },
    };
  }
  async swap(next: GatewayConfig): Promise<void> {
    this.swaps.push(next);
    if (this.failSwapTo?.(next)) throw new Error('port 8080 is taken');
    this.runningConfig = next;
  }
}

function setup(baseText = yaml()) {
  const baseFile = join(dir, 'config.yaml');
  writeFileSync(baseFile, baseText);
  const target = new FakeTarget(cfg(baseText));
  let t = 1_000_000;
  const applier = new ConfigApplier({
    target,
    baseFile,
    dataDir: join(dir, 'data'),
    log,
    watchMs: 1000,
    sleep: async (ms) => {
      t += ms;
    },
    now: () => t,
  });
  return { target, applier, baseFile, files: new RemoteConfigFiles(join(dir, 'data')) };
}

describe('config message (MQTT envelope)', () => {
  it('takes YAML text or a JSON object, a version and an optional watch (the actor is the signing key)', () => {
    const a = parseConfigMessage(
      Buffer.from(JSON.stringify({ v: 1, version: 7, config: 'gateway: { id: x }\n', watch: '2m' })),
    );
    expect(a).toEqual({
      ok: true,
      message: { version: 7, text: 'gateway: { id: x }\n', watchMs: 120_000 },
    });
    const b = parseConfigMessage(JSON.stringify({ version: 8, config: { gateway: { id: 'x' } } }));
    expect(b.ok && parseConfigText(b.message.text).ok).toBe(true);
  });

  it('refuses malformed messages with the reason', () => {
    const problem = (p: unknown) => {
      const r = parseConfigMessage(typeof p === 'string' ? p : JSON.stringify(p));
      return r.ok ? 'ok' : r.problem;
    };
    expect(problem('{nope')).toMatch(/^config message is not JSON/);
    expect(problem([1])).toBe('config message is not a JSON object');
    expect(problem({ config: 'a: 1' })).toBe('version must be a positive integer');
    expect(problem({ version: 1.5, config: 'a: 1' })).toBe('version must be a positive integer');
    expect(problem({ version: 1, config: 3 })).toBe('config must be YAML text or a JSON object');
    expect(problem({ version: 1, config: 'a: 1', extra: 1 })).toBe('unknown key "extra"');
    expect(problem({ version: 1, config: 'a: 1', actor: 'me' })).toBe('unknown key "actor"');
    expect(problem({ v: 2, version: 1, config: 'a: 1' })).toBe('message version 2 is not supported');
    expect(problem({ version: 1, config: 'a: 1', watch: 'soon' })).toMatch(/^watch must be a duration/);
    expect(problem({ version: 1, config: 'x'.repeat(300_000) })).toMatch(/too large/);
  });
});

describe('ConfigApplier: validate → apply → watch → roll back', () => {
  it('applies a good config, keeps it after the watch, and records the event', async () => {
    const { target, applier, files } = setup();
    const text = yaml('panel: { port: 8081 }\n');
    const r = await applier.apply({ version: 1, text, source: 'mqtt', actor: 'city' });
    expect(r).toEqual({ outcome: 'applied', version: 1, problems: [] });
    expect(target.swaps.map((c) => c.panel.port)).toEqual([8081]);
    expect(target.runningConfig.panel.port).toBe(8081);
    expect(target.events).toEqual([
      { kind: 'config', data: { outcome: 'applied', version: 1, source: 'mqtt', actor: 'city', problems: [] } },
    ]);
    const state = files.read();
    expect(state.applied?.version).toBe(1);
    expect(state.pending).toBeNull();
    expect(files.activeText()).toBe(text);
    expect(files.pendingText()).toBeNull();
  });

  it('ignores a version it has already handled (a retained message after a reconnect)', async () => {
    const { target, applier } = setup();
    await applier.apply({ version: 5, text: yaml('panel: { port: 8081 }\n'), source: 'mqtt', actor: 'city' });
    for (const v of [5, 4]) {
      expect(
        (await applier.apply({ version: v, text: yaml('panel: { port: 9000 }\n'), source: 'mqtt', actor: 'city' }))
          .outcome,
      ).toBe('ignored');
    }
    expect(target.swaps).toHaveLength(1);
    expect(target.events).toHaveLength(1);
  });

  it('rolls back when a bus of the new config does not open during the watch', async () => {
    const { target, applier, files } = setup();
    const before = target.runningConfig;
    target.health = [
      {
        bus: 'tcp',
        type: 'modbus-tcp',
        open: false,
        lastError: 'ECONNREFUSED',
        reconnects: 3,
        queueDepth: 0,
        transactions: 0,
        devices: [],
      },
    ];
    const r = await applier.apply({ version: 2, text: yaml(TCP_BUS), source: 'mqtt', actor: 'city' });
    expect(r.outcome).toBe('rolled_back');
    expect(r.problems).toEqual(['bus tcp is not open (ECONNREFUSED)']);
    expect(target.swaps.map((c) => c.buses.length)).toEqual([1, 0]);
    expect(target.runningConfig).toBe(before);
    const state = files.read();
    expect(state).toMatchObject({ applied: null, pending: null, lastSeenVersion: 2 });
    expect(files.pendingText()).toBeNull();
    expect(target.events.at(-1)!.data).toMatchObject({ outcome: 'rolled_back', version: 2 });
  });

  it('rolls back when a device that answered before stops answering, but not for one that was already down', async () => {
    const base = yaml(
      `${TCP_BUS}devices:\n  - { id: up, profile: xy-md02, bus: tcp, unit: 1 }\n  - { id: down, profile: xy-md02, bus: tcp, unit: 2 }\n`,
    );
    const { target, applier } = setup(base);
    const dev = (device: string, lastOkAt?: number) => ({
      device,
      state: lastOkAt ? ('ok' as const) : ('offline' as const),
      consecutiveFailures: 0,
      polls: 1,
      errors: 0,
      lastOkAt,
    });
    const bus = (devices: ReturnType<typeof dev>[]) => [
      { bus: 'tcp', type: 'modbus-tcp', open: true, reconnects: 0, queueDepth: 0, transactions: 1, devices },
    ];
    target.health = bus([dev('up', 999_000), dev('down')]);
    // after the swap: 'up' answered again, 'down' is still down: kept
    const swap = target.swap.bind(target);
    target.swap = async (next) => {
      await swap(next);
      target.health = bus([dev('up', 1_000_500), dev('down')]);
    };
    expect(
      (await applier.apply({ version: 1, text: `${base}panel: { port: 8082 }\n`, source: 'mqtt', actor: 'city' }))
        .outcome,
    ).toBe('applied');
    // now a change after which 'up' does not answer: rolled back
    target.swap = async (next) => {
      await swap(next);
      target.health = bus([dev('up', 999_000), dev('down')]);
    };
    const r = await applier.apply({
      version: 2,
      text: `${base}panel: { port: 8083 }\n`,
      source: 'mqtt',
      actor: 'city',
    });
    expect(r).toMatchObject({ outcome: 'rolled_back', problems: ['device up has not answered since the change'] });
  });

  it('rolls back at once when the new config does not start', async () => {
    const { target, applier } = setup();
    target.failSwapTo = (c) => c.panel.port === 8084;
    const r = await applier.apply({ version: 1, text: yaml('panel: { port: 8084 }\n'), source: 'http', actor: 'tech' });
    expect(r).toMatchObject({ outcome: 'rolled_back', problems: ['the new config did not start: port 8080 is taken'] });
    expect(target.swaps.map((c) => c.panel.port)).toEqual([8084, 8080]);
  });

  it('refuses, without touching anything, configs that are invalid or would move or change the store', async () => {
    const { target, applier, files } = setup();
    const cases: [string, RegExp][] = [
      ['gateway: [', /./],
      [yaml('buses:\n  - { id: b, type: modbus-rtux }\n'), /^buses\.0\.type: /],
      [
        'gateway: { id: gw-2 }\n'.replace('}', `, dataDir: ${dir}/data }`),
        /^gateway\.id: cannot change from gw-1 to gw-2/,
      ],
      [`gateway: { id: gw-1, dataDir: ${dir}/other }\n`, /^gateway\.dataDir: cannot change/],
      [
        yaml('storage: { maxBytes: 1GiB }\n'),
        /^storage: cannot change by a config change \(the buffer is never touched\)/,
      ],
    ];
    let v = 10;
    for (const [text, re] of cases) {
      const r = await applier.apply({ version: ++v, text, source: 'mqtt', actor: 'city' });
      expect(r.outcome, text).toBe('refused');
      expect(r.problems[0], text).toMatch(re);
    }
    expect(target.swaps).toEqual([]);
    expect(files.read()).toMatchObject({ applied: null, pending: null, lastSeenVersion: v });
    expect(target.events.map((e) => e.data.outcome)).toEqual(cases.map(() => 'refused'));
  });

  it('refuses a second change while one is under watch', async () => {
    const { applier } = setup();
    let release!: () => void;
    const slow = new ConfigApplier({
      ...(applier as unknown as { o: ConstructorParameters<typeof ConfigApplier>[0] }).o,
      sleep: () => new Promise<void>((r) => (release = r)),
    });
    const first = slow.apply({ version: 1, text: yaml('panel: { port: 8081 }\n'), source: 'mqtt', actor: 'city' });
    await new Promise((r) => setImmediate(r));
    expect(slow.applying).toBe(true);
    expect(
      (await slow.apply({ version: 2, text: yaml('panel: { port: 8082 }\n'), source: 'http', actor: 'tech' })).outcome,
    ).toBe('busy');
    release();
    expect((await first).outcome).toBe('applied');
  });

  it('reports each change as it goes (for the console), waits for `after` before the swap, and checks with lines', async () => {
    const { target, applier } = setup();
    const checked = applier.check('gateway: { id: gw-2 }\n'.replace('}', `, dataDir: ${dir}/data }`));
    expect(checked).toMatchObject({ ok: false, problems: [{ path: 'gateway.id', line: 1 }] });
    expect(applier.check('gateway:\n  id: gw-1\n  dataDir: x\n  bogus: 1\n')).toMatchObject({
      ok: false,
      problems: [{ path: 'gateway.bogus', line: 4 }],
    });
    expect(applier.status()).toBeNull();

    let sent!: () => void;
    const after = new Promise<void>((r) => (sent = r));
    const running = applier.apply({
      id: 'c1',
      version: null,
      text: yaml('panel: { port: 8087 }\n'),
      source: 'http',
      actor: 'tech',
      after,
    });
    // validated and reported at once; nothing swapped until the reply has gone out
    expect(applier.applying).toBe(true);
    expect(applier.status()).toMatchObject({ id: 'c1', state: 'applying', phase: 'starting', actor: 'tech' });
    await new Promise((r) => setImmediate(r));
    expect(target.swaps).toEqual([]);
    sent();
    expect((await running).outcome).toBe('applied');
    expect(target.swaps.map((c) => c.panel.port)).toEqual([8087]);
    expect(applier.status('c1')).toMatchObject({ state: 'applied', watchMs: 1000, problems: [] });
    expect(applier.runningText()).toMatchObject({ origin: 'applied', by: 'tech' });

    target.failSwapTo = (c) => c.panel.port === 8088;
    await applier.apply({
      id: 'c2',
      version: null,
      text: yaml('panel: { port: 8088 }\n'),
      source: 'http',
      actor: 'tech',
    });
    expect(applier.status()).toMatchObject({
      id: 'c2',
      state: 'rolled_back',
      problems: ['the new config did not start: port 8080 is taken'],
    });
    expect(applier.status('c1')?.state).toBe('applied');
    expect(applier.status('nope')).toBeNull();
  });

  it('a config still under watch at the last stop is reported rolled back at the next start', () => {
    const { target, applier, files } = setup();
    files.begin(
      files.read(),
      { version: 9, startedAt: new Date().toISOString(), source: 'mqtt', actor: 'city' },
      yaml('panel: { port: 8085 }\n'),
    );
    applier.recoverAtStart();
    expect(target.events).toEqual([
      {
        kind: 'config',
        data: expect.objectContaining({
          outcome: 'rolled_back',
          version: 9,
          problems: [expect.stringMatching(/restarted before the watch ended/)],
        }),
      },
    ]);
    expect(files.read()).toMatchObject({ pending: null, lastSeenVersion: 9 });
    applier.recoverAtStart();
    expect(target.events).toHaveLength(1);
  });
});

describe('effectiveConfig: which config a start uses', () => {
  it('the applied one while the file is unchanged; the file once someone edits it', async () => {
    const { applier, baseFile, files } = setup();
    await applier.apply({ version: 1, text: yaml('panel: { port: 8086 }\n'), source: 'mqtt', actor: 'city' });
    const base = cfg(readFileSync(baseFile, 'utf8'));
    expect(effectiveConfig(baseFile, base, log)).toMatchObject({ version: 1, config: { panel: { port: 8086 } } });
    writeFileSync(baseFile, `${readFileSync(baseFile, 'utf8')}# edited\n`);
    expect(effectiveConfig(baseFile, base, log)).toMatchObject({ version: null, config: { panel: { port: 8080 } } });
    expect(files.read().applied).toBeNull();
    expect(existsSync(join(files.dir, 'active.yaml'))).toBe(false);
    // the version history is kept: the city's v1 is not applied again
    expect(files.read().lastSeenVersion).toBe(1);
  });
});
