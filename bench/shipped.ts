import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  type BenchBus,
  freePort,
  type Proc,
  ptyPair,
  startGateway,
  startMosquitto,
  startReceiver,
  startSimulators,
  writeConfigs,
} from './procs.js';

/**
 * The gateway as shipped, for the RSS, CPU and disk benchmarks: `langbiang start --config` with
 * HTTP on, Node-RED off, sync on (every setting at its default) to a local Mosquitto, a reference
 * receiver (`langbiang receiver`) acknowledging end to end, and the devices simulated by
 * `langbiang simulate` — every one in its own process, so only the gateway is measured.
 */
export interface Shipped {
  gateway: Proc;
  pid: number;
  httpPort: number;
  dataDir: string;
  stop(): Promise<void>;
}

export async function startShipped(
  dir: string,
  buses: BenchBus[],
  flags: 'shipped' | 'default' | 'opt' = 'shipped',
): Promise<Shipped> {
  mkdirSync(dir, { recursive: true });
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s();
  };
  try {
    const broker = await startMosquitto(dir);
    stops.push(() => broker.proc.kill());
    const receiver = await startReceiver(broker.url, join(dir, 'city.db'));
    stops.push(() => receiver.kill());
    for (const b of buses) if (b.tcpPort === 0) b.tcpPort = await freePort();
    const httpPort = await freePort();
    const cfg = writeConfigs(dir, dataDir, httpPort, buses, broker.url);
    const sim = await startSimulators(cfg.simulator);
    stops.push(() => sim.kill());
    const gateway = startGateway(cfg.gateway, flags);
    stops.push(() => gateway.kill());
    await gateway.waitFor('http listening', 30_000);
    await gateway.waitFor('connected to the broker', 30_000);
    return { gateway, pid: gateway.child.pid!, httpPort, dataDir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * 500 points every 2 s: 20 soil probes (7 points) on an RS-485 line (a socat PTY pair) and 10
 * three-phase meters (36 points) behind two Modbus TCP gateways. The PTY's socat is stopped by
 * the returned `stop`.
 */
export async function fiveHundredPoints(
  dir: string,
  intervalS = 2,
): Promise<{ buses: BenchBus[]; points: number; stop(): Promise<void> }> {
  mkdirSync(dir, { recursive: true });
  const pty = await ptyPair(dir);
  const buses: BenchBus[] = [
    {
      id: 'rs485-soil',
      pty: { a: pty.a, b: pty.b },
      devices: Array.from({ length: 20 }, (_, i) => ({
        id: `soil-${i + 1}`,
        profile: 'comwintop-cwt-soil',
        unit: i + 1,
        interval: `${intervalS}s`,
      })),
    },
    ...[0, 1].map((g) => ({
      id: `meters-${g + 1}`,
      tcpPort: 0,
      devices: Array.from({ length: 5 }, (_, i) => ({
        id: `meter-${g * 5 + i + 1}`,
        profile: 'eastron-sdm630',
        unit: i + 1,
        interval: `${intervalS}s`,
      })),
    })),
  ];
  return { buses, points: 20 * 7 + 10 * 36, stop: () => pty.proc.kill() };
}
