import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { NotifyReceiver } from './notify-receiver.js';

/**
 * What systemd does with deploy/systemd/langbiang.service, for tests on a machine where systemd
 * cannot run the unit: before every start the pre-start check (ExecStartPre=), then
 * `<installRoot>/current/bin/langbiang.js start` (ExecStart=), readiness within TimeoutStartSec
 * and watchdog pings within WatchdogSec (from a real $NOTIFY_SOCKET), the stop hook with
 * $SERVICE_RESULT/$EXIT_CODE/$EXIT_STATUS (ExecStopPost=), and Restart=always after RestartSec.
 * A hung process is killed with SIGABRT (WatchdogSignal=) then SIGKILL, as systemd does.
 */
export interface SupervisorOptions {
  installRoot: string;
  dataDir: string;
  config: string;
  notify: NotifyReceiver;
  watchdogMs: number;
  startTimeoutMs: number;
  restartMs: number;
  env?: NodeJS.ProcessEnv;
}

export interface StartRecord {
  pid: number;
  /** the release `current` pointed at when it started */
  release: string;
  result?: string;
  exitCode?: number | null;
  signal?: string | null;
  output: string;
}

export class UpdateSupervisor {
  readonly starts: StartRecord[] = [];
  private child: ChildProcess | null = null;
  private stopping = false;
  private timer: NodeJS.Timeout | null = null;
  private waiters = new Set<() => void>();

  constructor(private readonly o: SupervisorOptions) {}

  get running(): StartRecord | undefined {
    return this.child ? this.starts[this.starts.length - 1] : undefined;
  }

  start(): void {
    this.stopping = false;
    this.launch();
  }

  private prestart(stopped?: Record<string, string>): string {
    const r = spawnSync(
      process.execPath,
      [
        join(this.o.installRoot, 'bin', 'langbiang-prestart.mjs'),
        '--install-root',
        this.o.installRoot,
        '--data-dir',
        this.o.dataDir,
        ...(stopped ? ['--stopped'] : []),
      ],
      { encoding: 'utf8', env: { ...process.env, ...stopped } },
    );
    if (r.status !== 0) throw new Error(`the pre-start check exited ${r.status}: ${r.stderr}`);
    return r.stderr;
  }

  private launch(): void {
    const pre = this.prestart();
    const release = realpathSync(join(this.o.installRoot, 'current')).split('/').pop()!;
    const child = spawn(
      process.execPath,
      [join(this.o.installRoot, 'current', 'bin', 'langbiang.js'), 'start', '--config', this.o.config],
      {
        env: {
          ...process.env,
          ...this.o.env,
          NOTIFY_SOCKET: this.o.notify.socket,
          WATCHDOG_USEC: String(this.o.watchdogMs * 1000),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child = child;
    const rec: StartRecord = { pid: child.pid!, release, output: pre };
    this.starts.push(rec);
    child.stdout!.on('data', (d: Buffer) => {
      rec.output += d.toString();
      this.wake();
    });
    child.stderr!.on('data', (d: Buffer) => {
      rec.output += d.toString();
      this.wake();
    });
    const started = Date.now();
    let killedFor: string | null = null;
    const mine = () => this.o.notify.messages.filter((m) => m.fields.MAINPID === String(child.pid));
    const kill = (why: string) => {
      if (killedFor) return;
      killedFor = why;
      child.kill('SIGABRT');
      setTimeout(() => child.kill('SIGKILL'), 1_000).unref();
    };
    this.timer = setInterval(() => {
      const msgs = mine();
      const ready = msgs.find((m) => m.fields.READY === '1');
      if (!ready) {
        if (Date.now() - started > this.o.startTimeoutMs) kill('timeout');
        return;
      }
      const last = Math.max(ready.t, ...msgs.filter((m) => m.fields.WATCHDOG === '1').map((m) => m.t));
      if (Date.now() - last > this.o.watchdogMs) kill('watchdog');
    }, 100);
    child.on('exit', (code, signal) => {
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      this.child = null;
      rec.exitCode = code;
      rec.signal = signal;
      const result = killedFor ?? (code === 0 ? 'success' : signal ? 'signal' : 'exit-code');
      rec.result = result;
      rec.output += this.prestart({
        SERVICE_RESULT: result,
        EXIT_CODE: signal ? 'killed' : 'exited',
        EXIT_STATUS: signal ? signal.replace(/^SIG/, '') : String(code),
      });
      this.wake();
      // Restart=always: every end but a stop asked for (a clean exit 0 of a broken release too)
      if (this.stopping) return;
      setTimeout(() => {
        if (!this.stopping) this.launch();
      }, this.o.restartMs).unref();
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves when `pred` holds (checked at every output and exit), rejects after timeoutMs. */
  waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pred()) {
          this.waiters.delete(check);
          clearTimeout(t);
          clearInterval(poll);
          resolve();
        }
      };
      const t = setTimeout(() => {
        this.waiters.delete(check);
        clearInterval(poll);
        reject(new Error(`timed out waiting for ${what}\n${this.describe()}`));
      }, timeoutMs);
      const poll = setInterval(check, 200);
      this.waiters.add(check);
      check();
    });
  }

  describe(): string {
    return this.starts
      .map(
        (s, i) => `--- start ${i} (${s.release}, pid ${s.pid}, ${s.result ?? 'running'}) ---\n${s.output.slice(-2500)}`,
      )
      .slice(-4)
      .join('\n');
  }

  /** `systemctl stop`: SIGTERM, wait, the stop hook; no restart. */
  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }

  /** `systemctl restart`. */
  async restart(): Promise<void> {
    await this.stop();
    this.start();
  }

  kill(): void {
    this.stopping = true;
    this.child?.kill('SIGKILL');
  }
}
