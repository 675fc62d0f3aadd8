import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flowChildEnv, flowEnvNameProblem } from '../../flows/host/flow-env.js';
import { parseTimeExpr } from '../../gateway/cabinet/time-expr.js';
import { formatProblems, parseConfigText } from '../../gateway/config/index.js';
import { parseDuration, parseSize } from '../../gateway/config/units.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-bounds-'));
  writeFileSync(join(dir, 'users.json'), 'SECRET-HASH-$scrypt$abcdef\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = () => `gateway: { id: gw-1, dataDir: ${dir}/data }\n`;
const problems = (text: string, opts: { allowFileTags?: boolean } = {}) => {
  const r = parseConfigText(text, { baseDir: dir, checkFiles: false, ...opts });
  return r.ok ? '' : formatProblems(r.problems);
};

/** ms one call takes; the machine is shared, so the bound is loose but far below quadratic time */
function timed(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

describe('config values: linear time, short quotes', () => {
  const long = [
    `1${' '.repeat(200_000)}!`,
    `${'1'.repeat(200_000)}x`,
    `1s${' 1s'.repeat(66_000)}!`,
    `${'1.'.repeat(100_000)}`,
    `sunset${' '.repeat(200_000)}!`,
    `sunset+${' '.repeat(100_000)}1${' '.repeat(100_000)}!`,
  ];

  it('refuses 200,000-character sizes, durations and schedule times at once, quoting a short prefix', () => {
    for (const v of long) {
      for (const parse of [parseSize, parseDuration, parseTimeExpr] as ((s: string) => unknown)[]) {
        let message = '';
        const ms = timed(() => {
          try {
            parse(v);
          } catch (err) {
            message = (err as Error).message;
          }
        });
        expect(ms, `${parse.name} on ${v.length} characters`).toBeLessThan(500);
        expect(message).not.toBe('');
        expect(message.length, message.slice(0, 200)).toBeLessThan(300);
      }
    }
  });

  it('a whole config with such values is refused fast, with one short line per problem', () => {
    const text = `${base()}storage: { maxBytes: "${long[0]}", maxAge: "${long[2]}" }\nflows: { maxHeap: "${long[0]}" }\nlog: { level: "${'x'.repeat(200_000)}" }\n`;
    let out = '';
    const ms = timed(() => {
      out = problems(text);
    });
    expect(ms).toBeLessThan(3000);
    const lines = out.split('\n');
    expect(lines.map((l) => l.split(':')[0])).toEqual([
      'storage.maxBytes',
      'storage.maxAge',
      'flows.maxHeap',
      'log.level',
    ]);
    for (const l of lines) expect(l.length).toBeLessThan(300);
    expect(out).toMatch(/\(200002 characters\)/);
  });

  it('a huge key is shortened in its problem too', () => {
    const out = problems(`${base()}log: { ${'k'.repeat(200_000)}: 1 }\n`);
    expect(out.length).toBeLessThan(300);
    expect(out).toMatch(/^log\.k{40}…: unknown key/);
  });

  it('sizes and durations still parse as before', () => {
    expect(parseSize(' 2 GiB ')).toBe(2 * 2 ** 30);
    expect(parseSize('512KiB')).toBe(512 * 1024);
    expect(parseDuration('1h 30m')).toBe(5_400_000);
    expect(parseDuration(' 500ms ')).toBe(500);
  });
});

describe('tags only in the file on disk; file content never quoted', () => {
  it('reads !file in the config file, but never quotes what it read', () => {
    const out = problems(`${base()}log: { level: !file users.json }\n`);
    expect(out).toBe(
      'log.level: the text read from its !file is not valid here (not shown: it may be secret) (line 2)',
    );
    expect(out).not.toContain('SECRET');
  });

  it('refuses !file in a config that came from the network or the console, reading nothing', () => {
    const out = problems(
      `${base()}log: { level: !file users.json }\nsync: { url: "mqtt://x", username: u, passwordFile: !file users.json }\n`,
      {
        allowFileTags: false,
      },
    );
    expect(out.split('\n')).toEqual([
      'log.level: !file is only allowed in the config file on the gateway, not in a config sent to it (line 2)',
      'sync.passwordFile: !file is only allowed in the config file on the gateway, not in a config sent to it (line 3)',
    ]);
  });

  it('a long file name is shortened in a problem', () => {
    const r = parseConfigText(
      `${base()}sync: { url: "mqtt://x", username: u, passwordFile: "/${", a '".repeat(40_000)}" }\n`,
      {
        baseDir: dir,
      },
    );
    expect(r.ok).toBe(false);
    if (!r.ok) expect(formatProblems(r.problems).length).toBeLessThan(400);
  });
});

describe('flows.env: an allow-list of names, and a minimal child environment', () => {
  it('refuses names a program would read, keeps the flows parameters', () => {
    for (const bad of [
      'NODE_OPTIONS',
      'NODE_PATH',
      'LD_PRELOAD',
      'LD_LIBRARY_PATH',
      'PATH',
      'HOME',
      'node_options',
      'FLOW_',
      'X',
    ])
      expect(flowEnvNameProblem(bad), bad).toMatch(/is not a flows parameter name/);
    for (const good of ['IRRIGATION_THRESHOLD', 'STREETLIGHT_LUX_ON', 'FLOW_GREENHOUSE_3'])
      expect(flowEnvNameProblem(good)).toBeUndefined();
    expect(
      problems(
        `${base()}flows: { env: { NODE_OPTIONS: "--import=data:text/javascript,1", IRRIGATION_THRESHOLD: 30 } }\n`,
      ),
    ).toBe(
      'flows.env.NODE_OPTIONS: "NODE_OPTIONS" is not a flows parameter name: upper-case letters, digits and _, starting with IRRIGATION_, STREETLIGHT_, FLOW_ (line 2)',
    );
  });

  it('the child gets a fixed PATH, the locale and time zone, and the flows parameters — nothing else of the gateway', () => {
    const env = flowChildEnv(
      { FLOW_X: '1' },
      {
        PATH: '/evil',
        NODE_OPTIONS: '--require=/tmp/x',
        LD_PRELOAD: '/tmp/x.so',
        CREDENTIALS_DIRECTORY: '/run/creds',
        TZ: 'Asia/Ho_Chi_Minh',
        HOME: '/var/lib/langbiang',
      },
    );
    expect(env.PATH).toBe('/usr/local/bin:/usr/bin:/bin');
    expect(env.TZ).toBe('Asia/Ho_Chi_Minh');
    expect(env.FLOW_X).toBe('1');
    expect(env.IRRIGATION_THRESHOLD).toBe('30');
    expect(env.NODE_ENV).toBe('production');
    for (const k of ['NODE_OPTIONS', 'LD_PRELOAD', 'CREDENTIALS_DIRECTORY', 'HOME']) expect(env[k]).toBeUndefined();
  });
});
