import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './common.js';
import { freePort, type Proc, startProc } from './procs.js';

/**
 * A PostgreSQL for the receiver benchmark, configured as a city would run it (fsync and
 * synchronous commit on: a receiver acknowledges only what is durable), in the scratch directory.
 * As root the server runs as Debian's `postgres` user (PostgreSQL refuses root).
 */
export interface BenchPostgres {
  proc: Proc;
  url(db: string): string;
  createDatabase(name: string): Promise<string>;
  /** pids of the postmaster and its backends (for CPU accounting) */
  pids(): number[];
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(root))
    for (const v of readdirSync(root).sort((a, b) => Number(b) - Number(a)))
      if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin');
  throw new Error('PostgreSQL is not installed (Debian package postgresql): the receiver-scale benchmark needs it');
}

export async function startBenchPostgres(dir: string): Promise<BenchPostgres> {
  const bin = binDir();
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const wrap = (cmd: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  const data = join(dir, 'pgdata');
  chmodSync(dir, 0o755);
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(dir, uid, gid);
  }
  const [c, a] = wrap(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'langbiang',
    '--auth=trust',
    '--no-locale',
    '-E',
    'UTF8',
  ]);
  execFileSync(c, a, { stdio: 'ignore' });
  writeFileSync(
    join(data, 'postgresql.auto.conf'),
    `listen_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\nmax_connections = 60\nshared_buffers = 128MB\n`,
  );
  if (asRoot) execFileSync('chown', ['postgres', join(data, 'postgresql.auto.conf')]);
  const port = await freePort();
  const [pc, pa] = wrap(join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', dir]);
  const proc = startProc(pc, pa);
  const deadline = Date.now() + 20_000;
  while (spawnSync(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-q']).status !== 0) {
    if (Date.now() > deadline || proc.child.exitCode !== null)
      throw new Error(`PostgreSQL did not start:\n${proc.output()}`);
    await sleep(100);
  }
  const url = (db: string) => `postgres://langbiang@127.0.0.1:${port}/${db}`;
  return {
    proc,
    url,
    async createDatabase(name) {
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: url('postgres') });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    pids() {
      // runuser → postgres (postmaster) → backends: every descendant of the process we started
      return descendants(proc.child.pid!);
    },
  };
}

/** A process and all its descendants, from /proc. */
export function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = procStat(Number(name));
    if (stat) parent.set(Number(name), stat.ppid);
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, pp] of parent) if (pp === out[i]) out.push(pid);
  return out;
}

/** CPU seconds (utime+stime; Linux counts in 1/100 s) and ppid of a process, or null when it is gone. */
export function procStat(pid: number): { ppid: number; cpuS: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // the command name may hold spaces and parentheses: fields start after the last ')'
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), cpuS: (Number(f[11]) + Number(f[12])) / 100 };
}
