import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, startCli, waitUntil } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { openPtyPair, type PtyPair } from '../helpers/pty.js';

interface Health {
  status: string;
  problems: string[];
  buses: { bus: string; open: boolean; devices: { device: string; state: string }[] }[];
}

/**
 * Issue 18: health tells the truth while the gateway runs, too. The RS-485 adapter (a socat PTY
 * standing in for it) is pulled out under a polling gateway and plugged back in: /healthz goes
 * degraded with the reason and comes back to ok, and the log says both in words.
 */
describe('an adapter unplugged and plugged back in under a running gateway', () => {
  let pty: PtyPair | null = null;
  let sim: ModbusSimulator | null = null;
  let gw: RunningCli | null = null;

  afterAll(async () => {
    gw?.child.kill('SIGKILL');
    await sim?.close();
    await pty?.close();
  });

  it('goes degraded with the reason, then ok again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'langbiang-unplug-'));
    pty = await openPtyPair({ dir: mkdtempSync(join(tmpdir(), 'langbiang-unplug-pty-')) });
    const plug = async () => {
      sim = await ModbusSimulator.serial({
        path: pty!.b,
        baudRate: 9600,
        units: [{ unit: 1, profile: loadProfile('xy-md02') }],
      });
    };
    await plug();
    const httpPort = await freePort();
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `gateway: { id: dl-gw-unplug, dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: rs485-1, type: modbus-rtu, port: ${pty.a}, baudRate: 9600, timeout: 200ms }
devices:
  - { id: climate-1, profile: xy-md02, bus: rs485-1, unit: 1, interval: 300ms }
panel: { port: ${httpPort}, host: 127.0.0.1 }
`,
    );
    gw = startCli(['start', '--config', config]);
    await gw.waitFor('http listening', 20_000);
    const health = async () => {
      const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
      return { code: res.status, body: (await res.json()) as Health };
    };
    await waitUntil(
      async () => {
        const h = await health();
        return h.code === 200 && h.body.buses[0]?.devices[0]?.state === 'ok' ? h : undefined;
      },
      10_000,
      'healthy with the adapter in',
    );

    // pull the adapter out: the port's device node disappears
    await sim?.close();
    sim = null;
    const ptyDir = pty.dir;
    await pty.close();
    const out = await waitUntil(
      async () => {
        const h = await health();
        return h.code === 503 ? h : undefined;
      },
      10_000,
      'degraded with the adapter out',
    );
    expect(out.body.status).toBe('degraded');
    expect(out.body.problems).toEqual([
      `bus rs485-1: ${pty.a} not found — see ls /dev/serial/by-id (1 device not polled)`,
    ]);
    expect(out.body.buses[0]).toEqual({
      bus: 'rs485-1',
      open: false,
      problem: `${pty.a} not found — see ls /dev/serial/by-id`,
      devices: [{ device: 'climate-1', state: 'bus_error' }],
    });
    await gw.waitFor(`gateway degraded: bus rs485-1: ${pty.a} not found`, 10_000);

    // plug it back in (the same name): the bus reopens by itself and the health comes back
    pty = await openPtyPair({ dir: ptyDir });
    await plug();
    await waitUntil(
      async () => {
        const h = await health();
        return h.code === 200 && h.body.buses[0]?.devices[0]?.state === 'ok' ? h : undefined;
      },
      40_000,
      'healthy again with the adapter back',
    );
    await gw.waitFor('gateway healthy again: every bus open, no device offline', 10_000);
  }, 90_000);
});
