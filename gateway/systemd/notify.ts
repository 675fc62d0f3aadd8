import { spawn } from 'node:child_process';

/**
 * Where sd_notify messages go. The real sink talks to systemd; tests give a fake one.
 * `send` never throws: a lost notification is logged by the caller's onError, never fatal.
 */
export interface NotifySink {
  send(fields: Record<string, string>): void;
}

export interface SystemdEnv {
  /** the datagram socket systemd listens on ($NOTIFY_SOCKET) */
  socket: string;
  /** ms between pings systemd expects at most; null when the unit has no WatchdogSec */
  watchdogMs: number | null;
}

/**
 * What systemd told this process through the environment (sd_notify(3), sd_watchdog_enabled(3)).
 * null when not started by systemd with Type=notify. WATCHDOG_PID names the process the watchdog
 * is meant for: a child that inherited the variables (the demo simulator, Node-RED) must not ping.
 */
export function systemdEnv(env: NodeJS.ProcessEnv = process.env, pid = process.pid): SystemdEnv | null {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return null;
  let watchdogMs: number | null = null;
  const usec = Number(env.WATCHDOG_USEC);
  const forPid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : pid;
  if (Number.isFinite(usec) && usec > 0 && forPid === pid) watchdogMs = Math.max(1, Math.floor(usec / 1000));
  return { socket, watchdogMs };
}

/**
 * Node cannot open AF_UNIX datagram sockets without a native module, so each notification is
 * sent by the `systemd-notify` tool that ships with systemd. Two details make that safe:
 * - the unit needs NotifyAccess=all (the sender is our child, not the main process), and
 * - systemd-notify waits until systemd has processed the message (its barrier, systemd ≥ 246),
 *   so a message from a sender that already exited is never dropped as "unknown PID".
 * `--pid` names us as the main process, in case we were started through a wrapper.
 * A ping costs one short-lived process every WatchdogSec/2 (15 s with the shipped unit).
 * One sender at a time: two processes started back to back race to the socket, and READY=1
 * must reach systemd before the STATUS= that follows it. Messages wait in order behind the
 * sender in flight; a later STATUS replaces a waiting one (only the newest line matters).
 * STOPPING=1 waits for nothing: the process exits soon after it, and a queue dies with the
 * process, so it is sent at once and whatever still waits is dropped (a stopping gateway's
 * status and pings no longer matter).
 */
export class SystemdNotifySink implements NotifySink {
  private inFlight = 0;
  private lastProblem: string | undefined;
  private readonly waiting: Record<string, string>[] = [];

  constructor(
    private readonly opts: {
      socket: string;
      /** the systemd-notify program (default: found on PATH) */
      program?: string;
      onError?: (message: string) => void;
      /** a sender that hangs (a wedged systemd) is killed after this long */
      timeoutMs?: number;
    },
  ) {}

  send(fields: Record<string, string>): void {
    const onlyPing = fields.WATCHDOG === '1' && Object.keys(fields).length === 1;
    if (fields.STOPPING === '1') {
      this.waiting.length = 0;
      this.spawnSender(fields);
      return;
    }
    if (this.inFlight > 0) {
      // A ping that is still waiting for systemd makes the next one pointless; don't pile up processes.
      if (onlyPing) return;
      const onlyStatus = Object.keys(fields).length === 1 && fields.STATUS !== undefined;
      const last = this.waiting[this.waiting.length - 1];
      if (onlyStatus && last && Object.keys(last).length === 1 && last.STATUS !== undefined) {
        this.waiting[this.waiting.length - 1] = fields;
      } else {
        this.waiting.push(fields);
      }
      return;
    }
    this.spawnSender(fields);
  }

  private spawnSender(fields: Record<string, string>): void {
    const args = [`--pid=${process.pid}`];
    if (fields.READY === '1') args.push('--ready');
    if (fields.STATUS !== undefined) args.push(`--status=${fields.STATUS}`);
    for (const [k, v] of Object.entries(fields)) if (k !== 'READY' && k !== 'STATUS') args.push(`${k}=${v}`);
    this.inFlight++;
    let done = false;
    const finish = (problem?: string) => {
      if (done) return;
      done = true;
      this.inFlight--;
      // Every 15 s the same failure would flood the journal: report each distinct one once.
      if (problem && problem !== this.lastProblem) this.opts.onError?.(problem);
      this.lastProblem = problem;
      const next = this.waiting.shift();
      if (next) this.spawnSender(next);
    };
    try {
      const child = spawn(this.opts.program ?? 'systemd-notify', args, {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, NOTIFY_SOCKET: this.opts.socket },
      });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), this.opts.timeoutMs ?? 10_000);
      timer.unref();
      child.on('error', (err) => {
        clearTimeout(timer);
        finish(`systemd-notify could not run: ${err.message}`);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) finish();
        else finish(`systemd-notify failed (${signal ?? `exit ${code}`})${stderr ? `: ${stderr.trim()}` : ''}`);
      });
    } catch (err) {
      finish(`systemd-notify could not run: ${(err as Error).message}`);
    }
  }
}
