import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteConfigFiles } from '../../gateway/remote-config/persist.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

// `langbiang start` reads its config in a short-lived child process (gateway/cli/start-config.ts)
// and loads the config-change machinery only when needed (gateway/host.ts): what a start must still
// do with them — errors, the profiles its devices use, a change found under watch — is checked here.
describe('langbiang start: the config read outside the gateway process', () => {
  let sim: ModbusSimulator;
  let dir: string;
  let gw: RunningCli | null = null;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lb-start-config-'));
    sim = await ModbusSimulator.tcp({ units: [{ unit: 1, profile: loadProfile('xy-md02') }] });
  });

  afterAll(async () => {
    gw?.child.kill('SIGKILL');
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('polls with the profiles the reader sent, reports a change left under watch as rolled back, and leaves no reader process', async () => {
    const dataDir = join(dir, 'data');
    const port = await freePort();
    const config = join(dir, 'gateway.yaml');
    const text = `gateway: { id: dl-start-cfg, dataDir: ${dataDir}, assumeClockSynced: true }
buses:
  - { id: tcp, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 500ms }
devices:
  - { id: climate-1, profile: xy-md02, bus: tcp, unit: 1, interval: 200ms }
storage: { batchMaxDelay: 100ms }
panel: { port: ${port}, host: 127.0.0.1 }
`;
    writeFileSync(config, text);
    // the process died while a change was on probation
    const files = new RemoteConfigFiles(dataDir);
    files.begin(files.read(), { version: 7, startedAt: new Date().toISOString(), source: 'mqtt', actor: 'city' }, text);
    expect(files.read().pending).not.toBeNull();

    gw = startCli(['start', '--config', config]);
    await gw.waitFor('http listening', 20_000);
    await gw.waitFor('config under watch at the last stop was not kept', 10_000);
    expect(files.read().pending).toBeNull();

    // the reader process has exited: the gateway has no child left
    const pid = gw.child.pid!;
    const children = readdirSync(`/proc/${pid}/task`)
      .flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/))
      .filter(Boolean);
    expect(children).toEqual([]);

    // the device's profile arrived from the reader: its points are polled and stored
    let health: { lastReadingAt: string | null; buses: { devices: { device: string; state: string }[] }[] } | null =
      null;
    await waitUntil(
      async () => {
        health = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as typeof health;
        return health!.lastReadingAt !== null;
      },
      10_000,
      'a stored reading',
    );
    expect(health!.buses[0]!.devices).toEqual([expect.objectContaining({ device: 'climate-1' })]);
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    gw = null;
  });

  it('a bad config fails the start with its problems, one per line, and no stack trace', async () => {
    const config = join(dir, 'bad.yaml');
    writeFileSync(config, `gateway: { id: dl-bad, dataDir: ${join(dir, 'bad-data')} }\nbuses: 5\n`);
    const r = await runCli(['start', '--config', config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${config} is not valid:`);
    expect(r.stderr).toMatch(/buses: .*\(line 2\)/);
    expect(r.stderr).not.toMatch(/\n\s+at /);

    const missing = await runCli(['start', '--config', join(dir, 'nope.yaml')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cannot read file');
  });
});
