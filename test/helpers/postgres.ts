import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

/**
 * A real PostgreSQL for one test file: `initdb` + `postgres` in a temp dir, on a free loopback
 * port, with its unix socket in the same temp dir (never the system's /var/run/postgresql).
 * PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user the
 * Debian package creates and the server runs through `runuser`.
 */
export interface Postgres {
  port: number;
  /** connection URL of the test database (trust auth on loopback: no password) */
  url: string;
  /** URL of another, freshly created database on the same server */
  createDatabase(name: string): Promise<string>;
  dir: string;
  /** stop the server and remove the temp dir */
  stop(): Promise<void>;
  log(): string;
}

const INSTALL_LINE = 'apt-get install -y postgresql';

/** initdb and postgres are not on PATH on Debian: they live in /usr/lib/postgresql/<ver>/bin. */
export function postgresBinDir(): string {
  const candidates: string[] = [];
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(path.join(root, v, 'bin'));
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (dir) candidates.push(dir);
  for (const dir of candidates) {
    if (existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'postgres'))) return dir;
  }
  throw new Error(`PostgreSQL is not installed (no initdb/postgres in ${root}/*/bin or PATH): ${INSTALL_LINE}`);
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

/** As root: the uid/gid of the user the server runs as (Debian's `postgres`, else `nobody`). */
function serviceUser(): { name: string; uid: number; gid: number } | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  for (const name of ['postgres', 'nobody']) {
    const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
    if (r.status === 0 && g.status === 0) return { name, uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
  }
  throw new Error('running as root and no `postgres` or `nobody` user exists to run PostgreSQL as');
}

function asUser(user: { name: string } | null, bin: string, args: string[]): [string, string[]] {
  return user ? ['runuser', ['-u', user.name, '--', bin, ...args]] : [bin, args];
}

export async function startPostgres(): Promise<Postgres> {
  const bin = postgresBinDir();
  installExitHook();
  const user = serviceUser();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'langbiang-pg-'));
  const data = path.join(dir, 'data');
  if (user) {
    chownSync(dir, user.uid, user.gid);
  }
  chmodSync(dir, 0o755);
  const [cmd, args] = asUser(user, path.join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'langbiang',
    '--auth=trust',
    '--encoding=UTF8',
    '--no-locale',
    '--no-sync',
  ]);
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${(err as { stderr?: Buffer }).stderr?.toString() ?? String(err)}`);
  }
  // Small and quiet: tests need a few connections, and no fsync (a crashed test box loses nothing of value).
  writeFileSync(
    path.join(data, 'postgresql.auto.conf'),
    [
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${dir}'`,
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      'max_connections = 50',
      'shared_buffers = 16MB',
      "log_min_messages = 'warning'",
      '',
    ].join('\n'),
  );
  if (user) chownSync(path.join(data, 'postgresql.auto.conf'), user.uid, user.gid);

  let child: ChildProcess | undefined;
  let port = 0;
  let log = '';
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    log = '';
    const [c, a] = asUser(user, path.join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', dir]);
    const proc = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    const collect = (d: Buffer) => {
      log += d.toString();
    };
    proc.stdout!.on('data', collect);
    proc.stderr!.on('data', collect);
    const ready = await waitReady(proc, port, bin);
    if (ready) {
      child = proc;
      break;
    }
    proc.kill('SIGKILL');
    live.delete(proc);
    if (attempt >= 2) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`PostgreSQL did not start on port ${port}:\n${log}`);
    }
  }

  const urlFor = (db: string) => `postgres://langbiang@127.0.0.1:${port}/${db}`;
  const pg = {
    port,
    dir,
    url: urlFor('postgres'),
    async createDatabase(name: string) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
      const { default: pgmod } = await import('pg');
      const c = new pgmod.Client({ connectionString: urlFor('postgres') });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return urlFor(name);
    },
    log: () => log,
    async stop() {
      const c = child;
      if (c && c.exitCode === null && c.signalCode === null) {
        const gone = new Promise<void>((r) => c.once('exit', () => r()));
        // SIGINT = "fast shutdown": sessions are ended, no waiting for clients to leave
        c.kill('SIGINT');
        const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
        await gone;
        clearTimeout(t);
      }
      if (c) live.delete(c);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return pg;
}

/** Ready when pg_isready says so; false if the server died (e.g. the port was taken). */
async function waitReady(proc: ChildProcess, port: number, bin: string): Promise<boolean> {
  const deadline = Date.now() + 20_000;
  let dead = false;
  proc.once('exit', () => {
    dead = true;
  });
  const isready = path.join(bin, 'pg_isready');
  while (Date.now() < deadline) {
    if (dead) return false;
    if (spawnSync(isready, ['-h', '127.0.0.1', '-p', String(port), '-U', 'langbiang', '-q']).status === 0) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
