import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/**
 * The pre-start check's state machine, run as systemd runs it: a separate `node` process before
 * each start, and with --stopped and systemd's $SERVICE_RESULT/$EXIT_CODE/$EXIT_STATUS after each stop.
 */
const PRESTART = fileURLToPath(new URL('../../bin/langbiang-prestart.mjs', import.meta.url));

let dir: string;
let installRoot: string;
let dataDir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-prestart-'));
  installRoot = join(dir, 'opt');
  dataDir = join(dir, 'data');
  for (const v of ['1.0.0', '1.1.0']) {
    mkdirSync(join(installRoot, 'releases', v, 'bin'), { recursive: true });
    writeFileSync(join(installRoot, 'releases', v, 'bin', 'langbiang.js'), '');
  }
  symlinkSync('releases/1.1.0', join(installRoot, 'current'));
  mkdirSync(join(dataDir, 'update'), { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function pending(extra: Record<string, unknown> = {}) {
  writeFileSync(
    join(dataDir, 'update', 'state.json'),
    JSON.stringify({
      v: 1,
      confirmed: '1.0.0',
      previous: null,
      pending: {
        version: '1.1.0',
        previous: '1.0.0',
        attempts: 0,
        maxAttempts: 2,
        appliedAt: 'x',
        source: 'cli',
        baseline: null,
        ...extra,
      },
    }),
  );
}

function run(stopped?: { SERVICE_RESULT: string; EXIT_CODE: string; EXIT_STATUS: string }) {
  const r = spawnSync(
    process.execPath,
    [PRESTART, '--install-root', installRoot, '--data-dir', dataDir, ...(stopped ? ['--stopped'] : [])],
    { encoding: 'utf8', env: { PATH: process.env.PATH, ...stopped } },
  );
  expect(r.status, r.stderr).toBe(0); // never keeps the gateway from starting
  return r.stderr;
}

const state = () => JSON.parse(readFileSync(join(dataDir, 'update', 'state.json'), 'utf8'));
const current = () => readlinkSync(join(installRoot, 'current'));
const events = () =>
  readFileSync(join(dataDir, 'update', 'events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
const crashed = { SERVICE_RESULT: 'exit-code', EXIT_CODE: 'exited', EXIT_STATUS: '1' };
const watchdog = { SERVICE_RESULT: 'watchdog', EXIT_CODE: 'killed', EXIT_STATUS: 'ABRT' };

describe('the pre-start check (boot counter)', () => {
  it('does nothing without a pending release, and survives a missing or corrupt state', () => {
    run();
    expect(current()).toBe('releases/1.1.0');
    writeFileSync(join(dataDir, 'update', 'state.json'), '{ not json');
    expect(run()).toBe('');
    run(crashed);
    expect(current()).toBe('releases/1.1.0');
  });

  it('counts starts of a crashing release and rolls back past maxAttempts, reason crashed', () => {
    pending();
    run();
    expect(state().pending.attempts).toBe(1);
    run(crashed);
    expect(state().pending.failure).toBe('crashed');
    run();
    run(crashed);
    expect(state().pending.attempts).toBe(2);
    expect(current()).toBe('releases/1.1.0');
    expect(run()).toMatch(/rolled back to 1\.0\.0: crashed after 2 start/);
    expect(current()).toBe('releases/1.0.0');
    expect(state().pending).toBeUndefined();
    expect(state().last).toMatchObject({
      outcome: 'rolled-back',
      version: '1.1.0',
      previous: '1.0.0',
      reason: 'crashed',
    });
    expect(events()).toEqual([
      expect.objectContaining({
        outcome: 'rolled-back',
        version: '1.1.0',
        running: '1.0.0',
        reason: 'crashed',
        attempts: 2,
      }),
    ]);
    run(); // the previous release starts: nothing pending, nothing changes
    expect(current()).toBe('releases/1.0.0');
    expect(events()).toHaveLength(1);
  });

  it('a watchdog kill or a start timeout is "hung"', () => {
    pending({ maxAttempts: 1 });
    run();
    run(watchdog);
    expect(state().pending.failure).toBe('hung');
    run();
    expect(state().last).toMatchObject({ outcome: 'rolled-back', reason: 'hung' });
    pending({ maxAttempts: 1 });
    rmSync(join(installRoot, 'current'));
    symlinkSync('releases/1.1.0', join(installRoot, 'current'));
    run();
    run({ SERVICE_RESULT: 'timeout', EXIT_CODE: 'killed', EXIT_STATUS: 'TERM' });
    expect(state().pending.failure).toBe('hung');
  });

  it('rolls back at once a release that said it was not healthy in its window', () => {
    pending({ attempts: 1, failure: 'unhealthy', detail: 'bus b is not open' });
    run(crashed); // its exit 1 does not turn "unhealthy" into "crashed"
    expect(state().pending.failure).toBe('unhealthy');
    run();
    expect(current()).toBe('releases/1.0.0');
    expect(events()[0]).toMatchObject({
      outcome: 'rolled-back',
      reason: 'unhealthy',
      attempts: 1,
      detail: 'bus b is not open',
    });
  });

  it('ignores the stop of the release that installed the update (exit 75), a clean stop, and a stop before any start', () => {
    pending();
    run({ SERVICE_RESULT: 'watchdog', EXIT_CODE: 'killed', EXIT_STATUS: 'ABRT' }); // attempts 0: the old release stopping
    expect(state().pending.failure).toBeUndefined();
    run();
    run({ SERVICE_RESULT: 'exit-code', EXIT_CODE: 'exited', EXIT_STATUS: '75' });
    run({ SERVICE_RESULT: 'success', EXIT_CODE: 'exited', EXIT_STATUS: '0' });
    expect(state().pending.failure).toBeUndefined();
  });

  it('keeps the new release when there is nothing to go back to, and does not count when current moved elsewhere', () => {
    pending({ previous: null, maxAttempts: 1 });
    run();
    expect(run()).toMatch(/no previous release to go back to/);
    expect(current()).toBe('releases/1.1.0');
    mkdirSync(join(installRoot, 'releases', '0.9.0'));
    pending();
    rmSync(join(installRoot, 'current'));
    symlinkSync('releases/0.9.0', join(installRoot, 'current'));
    expect(run()).toMatch(/not counting/);
    // never started, never confirmed: it is forgotten, or every later update is refused
    expect(state().pending).toBeUndefined();
    expect(state().last).toMatchObject({ outcome: 'rolled-back', version: '1.1.0', reason: 'not-switched' });
    expect(events().at(-1)).toMatchObject({ outcome: 'rolled-back', reason: 'not-switched', running: '0.9.0' });
  });

  it('forgets a pending release that current never switched to, when there is no previous release', () => {
    // a power cut between writing the pending release and the switch, on a first install
    pending({ previous: null });
    rmSync(join(installRoot, 'current'));
    symlinkSync('releases/1.0.0', join(installRoot, 'current'));
    run();
    expect(current()).toBe('releases/1.0.0');
    expect(state().pending).toBeUndefined();
    expect(events()).toEqual([
      expect.objectContaining({ outcome: 'rolled-back', reason: 'not-switched', running: '1.0.0' }),
    ]);
  });

  it('a technician who points current back at the previous release by hand has rolled back: nothing stays pending', () => {
    pending({ attempts: 1 });
    rmSync(join(installRoot, 'current'));
    symlinkSync('releases/1.0.0', join(installRoot, 'current'));
    run();
    expect(state().pending).toBeUndefined();
    expect(state().last).toMatchObject({ outcome: 'rolled-back', version: '1.1.0', reason: 'manual' });
    expect(events()[0]).toMatchObject({ outcome: 'rolled-back', reason: 'manual', running: '1.0.0', attempts: 1 });
  });
});
