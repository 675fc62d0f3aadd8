import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PtyPair {
  /** one end (e.g. the gateway's serial port) */
  a: string;
  /** the other end (e.g. the simulated devices) */
  b: string;
  /** directory holding the a/b links */
  dir: string;
  close(): Promise<void>;
}

function socatAvailable(): boolean {
  const r = spawnSync('socat', ['-V'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/**
 * A pseudo-terminal pair joined by socat: bytes written to `a` come out of `b` and back, like
 * two ends of an RS-485 cable. Fails (never skips) when socat is missing.
 */
export async function openPtyPair(opts: { timeoutMs?: number; dir?: string } = {}): Promise<PtyPair> {
  if (!socatAvailable()) {
    throw new Error('socat is not installed: serial tests need it (Debian/Ubuntu: apt-get install socat)');
  }
  // `dir` given: reuse its a/b link names (a cable plugged back in), and leave the directory be
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'langbiang-pty-'));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const child: ChildProcess = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => {
    exited = true;
  });
  child.once('error', () => {
    exited = true;
  });

  const cleanup = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      await Promise.race([exitPromise, new Promise((r) => setTimeout(r, 2000))]);
      if (!exited) child.kill('SIGKILL');
    }
    if (ownDir) rmSync(dir, { recursive: true, force: true });
    else {
      rmSync(a, { force: true });
      rmSync(b, { force: true });
    }
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 5000);
  // socat creates the links once both PTYs exist and then logs "starting data transfer loop"
  while (!(existsSync(a) && existsSync(b) && stderr.includes('starting data transfer loop'))) {
    if (exited) {
      await cleanup();
      throw new Error(`socat exited before the PTY pair was ready: ${stderr.trim()}`);
    }
    if (Date.now() > deadline) {
      await cleanup();
      throw new Error(`socat did not create the PTY pair in time: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { a, b, dir, close: cleanup };
}
