import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built CLI (npm test's pretest compiles dist/ first), run exactly as a technician would. */
export const BIN = fileURLToPath(new URL('../../bin/langbiang.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  opts: { cwd?: string; input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`langbiang ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 20000} ms\n${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** A long-running CLI process (the gateway) whose output is collected as it comes. */
export interface RunningCli {
  child: ChildProcess;
  output(): string;
  waitFor(pattern: RegExp | string, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

/**
 * Every long-running CLI this test process started and that has not exited yet. A test that fails
 * half-way never reaches its own kill, and a gateway left running keeps its port, its data dir's
 * lock and its broker client id, so the next test fails for a reason that is not its own.
 */
const started = new Set<RunningCli>();

/**
 * SIGKILLs every CLI started by startCli that is still running and waits until each has exited.
 * For `afterEach`/`afterAll`: it runs even when an assertion failed.
 */
export async function stopStartedClis(): Promise<void> {
  const running = [...started];
  for (const r of running) r.child.kill('SIGKILL');
  await Promise.all(running.map((r) => r.exited));
}

// the last resort: a worker that exits (or is torn down) takes its gateways with it
process.once('exit', () => {
  for (const r of started) r.child.kill('SIGKILL');
});

export function startCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: { re: RegExp | string; resolve: () => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (typeof w.re === 'string' ? out.includes(w.re) : w.re.test(out)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    check();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
    check();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code, signal) => {
      started.delete(running);
      resolve(code ?? (signal ? -1 : null));
    }),
  );
  // a binary that cannot be spawned never emits 'exit': it must not stay in the set
  child.on('error', () => started.delete(running));
  const running: RunningCli = {
    child,
    output: () => out,
    exited,
    waitFor(re, timeoutMs = 15_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${re}\n--- output ---\n${out.slice(-3000)}`)),
          timeoutMs,
        );
        waiters.push({
          re,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
        check();
      });
    },
  };
  started.add(running);
  return running;
}

export async function waitUntil<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? ` (last error: ${(lastErr as Error).message})` : ''}`);
}
