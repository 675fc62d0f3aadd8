import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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

/**
 * Writes a gateway config (HTTP on, Node-RED off; sync to `syncUrl` with every other sync setting
 * at its default, or no sync) and the matching simulator config.
 */
export function writeConfigs(
  dir: string,
  dataDir: string,
  httpPort: number,
  buses: BenchBus[],
  syncUrl?: string,
): SiteConfig {
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
    if (side === 'a' && syncUrl) lines.push(`sync: { url: ${JSON.stringify(syncUrl)} }`);
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

function mosquittoBinary(): string {
  for (const p of ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/bin/mosquitto'])
    if (existsSync(p)) return p;
  throw new Error('mosquitto is not installed: the benchmark needs the Debian package `mosquitto`');
}

/** A local Mosquitto 2 on a free loopback port, no persistence (the broker's disk is not what we measure). */
export async function startMosquitto(dir: string): Promise<{ url: string; proc: Proc }> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nlog_dest stderr\nlog_type error\n`,
  );
  const proc = startProc(mosquittoBinary(), ['-c', conf]);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline || proc.child.exitCode !== null)
      throw new Error(`mosquitto did not start: ${proc.output()}`);
    await sleep(50);
  }
  return { url: `mqtt://127.0.0.1:${port}`, proc };
}

/** `langbiang receiver` (SQLite, acknowledging what it commits) in its own process; resolves once subscribed. */
export async function startReceiver(url: string, db: string): Promise<Proc> {
  const p = startProc(process.execPath, [
    BIN,
    'receiver',
    '--broker',
    url,
    '--db',
    db,
    '--client-id',
    'bench-city',
    '--stats-interval',
    '0',
  ]);
  await p.waitFor('receiver subscribed', 20_000);
  return p;
}

/** the compiled CLI's entry, for running `start` without the launcher's V8 flags */
const MAIN = new URL('../gateway/cli/main.js', import.meta.url).href;

/**
 * `langbiang start --config FILE` as shipped (bin/langbiang.js, its V8 flags), with V8's defaults
 * (`flags: 'default'`: the same CLI imported by a bare node, no flags set), or with the launcher's
 * memory flags but the optimizing compilers free to compile any function (`'opt'`: no
 * `--turbo-filter=hot*`, no `--no-maglev`), the one trade the lead decides on
 * (docs/performance.md). `nodeArgs` go before the script (e.g. --cpu-prof).
 */
export function startGateway(
  config: string,
  flags: 'shipped' | 'default' | 'opt' = 'shipped',
  nodeArgs: string[] = [],
): Proc {
  if (flags === 'shipped') return startProc(process.execPath, [...nodeArgs, BIN, 'start', '--config', config]);
  const code = `import(${JSON.stringify(MAIN)}).then((m) => m.main(process.argv.slice(1)))`;
  const v8 = flags === 'opt' ? ['--semi-space-growth-factor=1', '--optimize-for-size'] : [];
  return startProc(process.execPath, [...nodeArgs, ...v8, '-e', code, 'start', '--config', config]);
}

/** CPU seconds (user + system) a process has used, from /proc/PID/stat (clock ticks of 1/100 s on Linux). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the command name may hold spaces: fields count from the closing parenthesis
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
