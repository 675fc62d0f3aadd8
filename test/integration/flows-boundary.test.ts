import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlowsSupervisor } from '../../flows/host/index.js';
import type { RunnerInit } from '../../flows/host/protocol.js';
import { nodeRedSettings, UNSAFE_NODE_FILES } from '../../flows/host/settings.js';
import { SystemClock } from '../../gateway/clock/index.js';
import { EventBus } from '../../gateway/core/events.js';
import { prepareFlowsBoundary } from '../../gateway/flows-boundary.js';
import { lookupOwner } from '../../gateway/provision/files.js';
import { Store } from '../../gateway/store/index.js';
import { startCli, waitUntil } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

const PROBE = fileURLToPath(new URL('../helpers/probe-flows-runner.mjs', import.meta.url));
const errors: unknown[] = [];
const quiet = { debug() {}, info() {}, warn() {}, error: (o: unknown) => errors.push(o) };

// Node-RED as a boundary: the child runs as its own user and cannot read the gateway's secrets,
// users file or store. Dropping to another uid needs root: this machine's tests run as root, and
// where they do not, the gateway must refuse with a clear sentence (checked below instead).
describe('the flows process cannot read what the gateway keeps to itself', () => {
  let dataDir: string;
  let sup: FlowsSupervisor | null = null;
  const sensitive: string[] = [];

  beforeAll(() => {
    // under /tmp (world-traversable), as /var/lib is for the real data directory
    const parent = mkdtempSync(join(tmpdir(), 'lb-flows-boundary-'));
    chmodSync(parent, 0o755);
    dataDir = join(parent, 'data');
    mkdirSync(join(dataDir, 'secrets'), { recursive: true, mode: 0o700 });
    writeFileSync(join(dataDir, 'secrets', 'mqtt-password'), 'hunter2\n', { mode: 0o600 });
    writeFileSync(join(dataDir, 'users.json'), '{"users":[]}\n', { mode: 0o644 });
    const store = Store.open({ dataDir, clock: new SystemClock({ assumeSynced: true }) });
    store.close();
    mkdirSync(join(dataDir, 'remote-config'), { recursive: true });
    writeFileSync(join(dataDir, 'remote-config', 'active.yaml'), 'gateway: { id: x }\n', { mode: 0o644 });
    sensitive.push(
      join(dataDir, 'secrets', 'mqtt-password'),
      join(dataDir, 'users.json'),
      join(dataDir, 'remote-config', 'active.yaml'),
      ...['langbiang.db'].map((f) => join(dataDir, f)).filter(existsSync),
    );
  });

  afterAll(async () => {
    await sup?.stop();
    rmSync(join(dataDir, '..'), { recursive: true, force: true });
  });

  it('runs the child as the flows user, which reads none of the secrets, the users file or the store', async () => {
    expect(sensitive.length).toBeGreaterThanOrEqual(4);
    if (process.getuid?.() !== 0) {
      expect(() => prepareFlowsBoundary(dataDir, 'nobody')).toThrow(
        /needs the gateway to run as root or with CAP_SETUID/,
      );
      return;
    }
    const owner = prepareFlowsBoundary(dataDir, 'nobody');
    expect(owner.uid).toBe(lookupOwner('nobody').uid);
    expect(statSync(dataDir).mode & 0o777).toBe(0o711);
    expect(statSync(join(dataDir, 'flows')).uid).toBe(owner.uid);
    process.env.LANGBIANG_TEST_GATEWAY_ONLY = 'not for the flows';
    try {
      sup = new FlowsSupervisor({
        dataDir,
        gatewayId: 'gw-test',
        credentialSecret: 'test-secret',
        log: quiet,
        events: new EventBus(),
        history: () => [],
        recorder: { recordEvent: () => {} },
        commands: { execute: async (req) => ({ id: req.id, ok: true, ts: Date.now() }) },
        maxOldSpaceMb: 64,
        maxRssBytes: 1024 * 1024 * 1024,
        heartbeatTimeoutMs: 5000,
        startTimeoutMs: 10_000,
        backoffInitialMs: 50,
        backoffMaxMs: 1000,
        crashLoopCrashes: 3,
        crashLoopWindowMs: 60_000,
        crashLoopCooldownMs: 60_000,
        runnerPath: PROBE,
        runAs: { uid: owner.uid, gid: owner.gid },
        env: { FLOW_PROBE_FILES: JSON.stringify(sensitive) },
      });
      sup.start();
      await waitUntil(() => existsSync(join(dataDir, 'flows', 'probe.json')), 10_000, 'the probe result').catch(
        (err: Error) => {
          throw new Error(`${err.message}: ${JSON.stringify(errors)}`);
        },
      );
    } finally {
      delete process.env.LANGBIANG_TEST_GATEWAY_ONLY;
    }
    const probe = JSON.parse(readFileSync(join(dataDir, 'flows', 'probe.json'), 'utf8'));
    expect(probe.uid).toBe(owner.uid);
    expect(probe.reads).toEqual(Object.fromEntries(sensitive.map((f) => [f, 'EACCES'])));
    expect(probe.env).not.toContain('LANGBIANG_TEST_GATEWAY_ONLY');
    expect(probe.env).not.toContain('NODE_OPTIONS');
    // the gateway itself still reads its files
    expect(readFileSync(join(dataDir, 'secrets', 'mqtt-password'), 'utf8')).toBe('hunter2\n');
  });

  it('leaves out the nodes that run programs or touch files unless flows.allowUnsafeNodes', () => {
    const init = { allowUnsafeNodes: false, nodesDir: '/x', proxyToken: 't' } as RunnerInit;
    expect(nodeRedSettings(init, null, () => {}).nodesExcludes).toEqual(['90-exec.js', '10-file.js', '23-watch.js']);
    expect(nodeRedSettings({ ...init, allowUnsafeNodes: true }, null, () => {}).nodesExcludes).toEqual([]);
    // the files named are the ones Node-RED ships (a rename upstream would silently re-enable them)
    const core = fileURLToPath(new URL('../../node_modules/@node-red/nodes/core/', import.meta.url));
    for (const f of UNSAFE_NODE_FILES)
      expect(
        ['function', 'storage'].some((d) => existsSync(join(core, d, f))),
        f,
      ).toBe(true);
  });

  it('a real gateway starts the real Node-RED as flows.user, and the flows run', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'lb-flows-user-'));
    chmodSync(parent, 0o755);
    const port = await freePort();
    const config = join(parent, 'gateway.yaml');
    writeFileSync(
      config,
      `gateway: { id: dl-gw-flows-user, dataDir: ${parent}/data, assumeClockSynced: true }\nbuses: []\ndevices: []\npanel: { port: ${port}, host: 127.0.0.1 }\nflows: { enabled: true, user: nobody }\n`,
    );
    const gw = startCli(['start', '--config', config]);
    try {
      if (process.getuid?.() !== 0) {
        await gw.waitFor('flows not started', 30_000);
        expect(gw.output()).toMatch(/needs the gateway to run as root or with CAP_SETUID/);
        return;
      }
      await gw.waitFor('node-red running', 90_000);
      const health = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as {
        flows: { pid: number; state: string };
      };
      expect(health.flows.state).toBe('running');
      const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${health.flows.pid}/status`, 'utf8'))?.[1];
      expect(Number(uid)).toBe(lookupOwner('nobody').uid);
      expect(statSync(join(parent, 'data', 'flows', 'flows.json')).uid).toBe(lookupOwner('nobody').uid);
      expect(statSync(join(parent, 'data', 'langbiang.db')).mode & 0o007).toBe(0);
    } finally {
      gw.child.kill('SIGKILL');
      await gw.exited;
      rmSync(parent, { recursive: true, force: true });
    }
  }, 120_000);
});
