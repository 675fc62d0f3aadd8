import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { FlowsSupervisor, type FlowsSupervisorOptions } from '../../flows/host/index.js';
import { proxyTokenCheck } from '../../flows/host/settings.js';
import type { CommandRequest } from '../../gateway/core/command.js';
import { EventBus } from '../../gateway/core/events.js';
import { waitUntil } from '../helpers/cli.js';

const FAKE = fileURLToPath(new URL('../helpers/fake-flows-runner.mjs', import.meta.url));
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function supervisor(mode: string, over: Partial<FlowsSupervisorOptions> = {}) {
  const events: { kind: string; data: Record<string, unknown> }[] = [];
  const commands: CommandRequest[] = [];
  const sup = new FlowsSupervisor({
    dataDir: mkdtempSync(join(tmpdir(), 'langbiang-flows-sup-')),
    gatewayId: 'gw-test',
    credentialSecret: 'test-secret',
    log: quiet,
    events: new EventBus(),
    history: () => [],
    recorder: { recordEvent: (kind, data) => events.push({ kind, data }) },
    commands: {
      execute: async (req) => {
        commands.push(req);
        return { id: req.id, ok: true, ts: Date.now() };
      },
    },
    failsafe: [{ device: 'valves', point: 'relay_1', value: false }],
    maxOldSpaceMb: 64,
    maxRssBytes: 1024 * 1024 * 1024,
    heartbeatIntervalMs: 100,
    heartbeatTimeoutMs: 800,
    startTimeoutMs: 10_000,
    backoffInitialMs: 50,
    backoffMaxMs: 1000,
    crashLoopCrashes: 3,
    crashLoopWindowMs: 60_000,
    crashLoopCooldownMs: 60_000,
    runnerPath: FAKE,
    env: { FAKE_MODE: mode },
    ...over,
  });
  running.push(sup);
  return { sup, events, commands };
}

const running: FlowsSupervisor[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

describe('the flows supervisor (real child processes)', () => {
  it('restarts a crashing runtime with a doubling backoff, then stops at the crash loop and records it', async () => {
    const { sup, events, commands } = supervisor('crash');
    sup.start();
    await waitUntil(() => sup.status().state === 'crash-loop', 10_000, 'the crash loop');
    expect(events.map((e) => e.data.state)).toEqual(['restarting', 'restarting', 'crash-loop']);
    expect(events.every((e) => e.kind === 'flows')).toBe(true);
    expect(events.map((e) => e.data.restartInMs).slice(0, 2)).toEqual([50, 100]);
    expect(events[2]!.data).toMatchObject({ reason: 'exit', code: 7, crashes: 3 });
    expect(sup.status()).toMatchObject({ restarts: 2, pid: null });
    // every death closed the valve
    await waitUntil(() => commands.length === 3, 2000, 'three fail-safe writes');
    expect(commands[0]).toMatchObject({ device: 'valves', point: 'relay_1', value: false, source: 'flows' });
    // and no further start during the cool-down
    await new Promise((r) => setTimeout(r, 500));
    expect(sup.status()).toMatchObject({ state: 'crash-loop', restarts: 2 });
  });

  it('kills a runtime whose event loop is blocked (no heartbeat) and starts a new one', async () => {
    const { sup, events } = supervisor('hang');
    sup.start();
    expect(await sup.whenReady(10_000)).toBe(true);
    const firstPid = sup.status().pid;
    await waitUntil(() => sup.status().restarts >= 1 && sup.status().state === 'running', 10_000, 'a restart');
    expect(sup.status().lastExit).toMatchObject({ reason: 'heartbeat', signal: 'SIGKILL' });
    expect(sup.status().pid).not.toBe(firstPid);
    expect(events[0]).toMatchObject({ kind: 'flows', data: { state: 'restarting', reason: 'heartbeat' } });
  });

  it('kills a runtime past its RSS cap (memory outside the V8 heap)', async () => {
    const { sup, events } = supervisor('rss', { maxRssBytes: 200 * 1024 * 1024 });
    sup.start();
    await waitUntil(() => events.length > 0, 10_000, 'the memory kill');
    expect(events[0]!.data).toMatchObject({ state: 'restarting', reason: 'memory', signal: 'SIGKILL' });
  });

  it('the editor token names the user only with the gateway proxy secret', async () => {
    const check = proxyTokenCheck('s3cret-token');
    expect(await check('s3cret-token tech')).toEqual({ username: 'tech', permissions: '*' });
    expect(await check('s3cret-tokex tech')).toBeNull();
    expect(await check('s3cret-token')).toBeNull();
    expect(await check('tech')).toBeNull();
    expect(await check('s3cret-token ')).toBeNull();
  });
});
