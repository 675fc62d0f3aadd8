import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfigOrThrow } from '../../gateway/config/index.js';
import type { GatewayHealthChange } from '../../gateway/core/events.js';
import { GatewayHost } from '../../gateway/host.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { waitUntil } from '../helpers/cli.js';

/**
 * One source of health changes: the running parts' health watch. A subscriber of the host (as
 * `langbiang start`'s log line and systemd status are) hears the state at once, each change, and
 * goes on hearing it across a config swap; what it hears is what /healthz says.
 */
describe('health changes from the host, across a config swap', () => {
  const dir = mkdtempSync(join(tmpdir(), 'langbiang-health-changes-'));
  let sim: ModbusSimulator | undefined;
  let host: GatewayHost | undefined;

  afterAll(async () => {
    await host?.stop();
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports degraded at once, then ok after a swap to a config whose bus opens', async () => {
    sim = await ModbusSimulator.tcp({ units: [{ unit: 1, profile: loadProfile('comwintop-cwt-soil') }] });
    const missing = join(dir, 'ttyUSB9');
    const head = `gateway: { id: dl-gw-health, dataDir: ${dir}/data, assumeClockSynced: true }\n`;
    const file = join(dir, 'gateway.yaml');
    writeFileSync(
      file,
      `${head}buses:\n  - { id: rs485-1, type: modbus-rtu, port: ${missing} }\ndevices:\n  - { id: soil-a1, profile: comwintop-cwt-soil, bus: rs485-1, unit: 1, interval: 500ms }\n`,
    );
    host = await GatewayHost.start(loadConfigOrThrow(file).config, file, { log: pino({ level: 'silent' }) });
    const seen: GatewayHealthChange[] = [];
    const off = host.onHealthChange((h) => seen.push(h));
    // at once: the state of the last check, the same problems /healthz has
    expect(seen).toHaveLength(1);
    expect(seen[0]!.status).toBe('degraded');
    expect(seen[0]!.problems).toEqual(host.current.health().problems);
    expect(seen[0]!.problems[0]).toMatch(/^bus rs485-1: .*ttyUSB9 not found/);

    writeFileSync(
      file,
      `${head}buses:\n  - { id: sim, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 300ms }\ndevices:\n  - { id: soil-a1, profile: comwintop-cwt-soil, bus: sim, unit: 1, interval: 300ms }\n`,
    );
    await host.swap(loadConfigOrThrow(file).config);
    await waitUntil(() => seen.at(-1)?.status === 'ok', 10_000, 'ok after the swap');
    expect(seen.at(-1)).toEqual({ status: 'ok', problems: [] });
    expect(host.current.health().problems).toEqual([]);

    // the device goes offline under the new parts: heard within the watch's second or two
    const before = seen.length;
    await sim.close();
    sim = undefined;
    await waitUntil(() => seen.length > before && seen.at(-1)?.status === 'degraded', 20_000, 'degraded again');
    expect(seen.at(-1)!.problems.join('; ')).toMatch(/device soil-a1 on bus sim: offline|bus sim: /);
    off();
    const n = seen.length;
    await new Promise((r) => setTimeout(r, 1500));
    expect(seen.length).toBe(n);
  }, 60_000);
});
