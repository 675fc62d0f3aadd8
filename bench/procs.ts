import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './common.js';

/** The built CLI, run exactly as a technician runs it. */
export const BIN = fileURLToPath(new URL('../../bin/langbiang.js', import.meta.url));

export interface Proc {
  child: ChildProcess;
  output(): string;
  waitFor(text: string, timeoutMs: number): Promise<void>;
  kill(): Promise<void>;
}

/** A child process whose stdout+stderr are collected (and never left to fill a pipe). */
export function startProc(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 1_000_000) out = out.slice(-200_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let gone = false;
  child.once('exit', () => {
    gone = true;
  });
  return {
    child,
    output: () => out,
    async waitFor(text, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (!out.includes(text)) {
        if (gone) throw new Error(`${args.join(' ')} exited before "${text}":\n${out.slice(-2000)}`);
        if (Date.now() > deadline)
          throw new Error(`no "${text}" within ${timeoutMs} ms from ${args.join(' ')}:\n${out.slice(-2000)}`);
        await sleep(20);
      }
    },
    async kill() {
      if (gone) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A socat pseudo-terminal pair: the gateway opens `a`, the simulated RS-485 devices `b`. */
export async function ptyPair(dir: string): Promise<{ a: string; b: string; proc: Proc }> {
  const a = join(dir, 'tty-a');
  const b = join(dir, 'tty-b');
  const proc = startProc('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`]);
  proc.child.once('error', () => {});
  const deadline = Date.now() + 5000;
  while (!(existsSync(a) && existsSync(b))) {
    if (Date.now() > deadline || proc.child.exitCode !== null)
      throw new Error(`socat did not make a PTY pair (is the Debian package socat installed?): ${proc.output()}`);
    await sleep(20);
  }
  return { a, b, proc };
}

export interface SiteConfig {
  /** gateway config (YAML) */
  gateway: string;
  /** the same devices as the simulators see them (RTU on the other end of the PTY) */
  simulator: string;
}

export interface BenchBus {
  id: string;
  /** tcp port, or PTY ends for RTU */
  tcpPort?: number;
  pty?: { a: string; b: string };
  devices: { id: string; profile: string; unit: number; interval: string; points?: string[] }[];
}

/** Writes a gateway config (HTTP on, Node-RED off, no sync) and the matching simulator config. */
export function writeConfigs(dir: string, dataDir: string, httpPort: number, buses: BenchBus[]): SiteConfig {
  const render = (side: 'a' | 'b') => {
    const lines = [
      `gateway: { id: dl-bench-0001, name: "bench", dataDir: ${JSON.stringify(dataDir)}, assumeClockSynced: true }`,
      'buses:',
    ];
    for (const b of buses) {
      if (b.tcpPort !== undefined)
        lines.push(`  - { id: ${b.id}, type: modbus-tcp, host: 127.0.0.1, port: ${b.tcpPort}, timeout: 1s }`);
      else
        lines.push(
          `  - { id: ${b.id}, type: modbus-rtu, port: ${JSON.stringify(b.pty![side])}, baudRate: 19200, timeout: 300ms }`,
        );
    }
    lines.push('devices:');
    for (const b of buses)
      for (const d of b.devices)
        lines.push(
          `  - { id: ${d.id}, profile: ${d.profile}, bus: ${b.id}, unit: ${d.unit}, interval: ${d.interval}${d.points ? `, points: [${d.points.join(', ')}]` : ''} }`,
        );
    lines.push(`panel: { port: ${httpPort}, host: 127.0.0.1 }`, 'flows: { enabled: false }', 'log: { level: info }');
    return `${lines.join('\n')}\n`;
  };
  const gateway = join(dir, 'gateway.yaml');
  const simulator = join(dir, 'simulator.yaml');
  writeFileSync(gateway, render('a'));
  writeFileSync(simulator, render('b'));
  return { gateway, simulator };
}

/** `langbiang simulate --config FILE` in its own process; resolves once it serves. */
export async function startSimulators(config: string): Promise<Proc> {
  const p = startProc(process.execPath, [BIN, 'simulate', '--config', config]);
  await p.waitFor('simulators ready', 20_000);
  return p;
}
