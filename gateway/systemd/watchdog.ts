import type { NotifySink } from './notify.js';

/** Timers as the watchdog needs them; tests inject a manual clock. */
export interface WatchdogTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const realTimers: WatchdogTimers = {
  setInterval: (fn, ms) => {
    const t = setInterval(fn, ms);
    // A ping timer alone must not keep a stopping process alive.
    t.unref();
    return t;
  },
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

export interface WatchdogOptions {
  sink: NotifySink;
  /** systemd's WatchdogSec in ms (from WATCHDOG_USEC); null: readiness only, no pings */
  watchdogMs: number | null;
  timers?: WatchdogTimers;
  /**
   * Asked before each ping: false withholds it, so a gateway that is up but wedged in a way the
   * event loop does not show (e.g. the store failing every commit) is restarted too.
   */
  healthy?: () => boolean;
}

/**
 * Readiness and watchdog pings for systemd (Type=notify, WatchdogSec=). The ping timer runs on
 * the main event loop on purpose: a loop blocked by a runaway computation or a synchronous call
 * that never returns sends nothing, so systemd kills and restarts the process after WatchdogSec.
 * Pings go at half the watchdog period, as sd_watchdog_enabled(3) recommends.
 */
export class Watchdog {
  private handle: unknown = null;
  private readySent = false;
  private lastStatus: string | undefined;

  constructor(private readonly opts: WatchdogOptions) {}

  /** ms between pings, or null when systemd expects none */
  get intervalMs(): number | null {
    return this.opts.watchdogMs === null ? null : Math.max(1, Math.floor(this.opts.watchdogMs / 2));
  }

  /** Tell systemd the gateway is up (after store, buses and HTTP started) and begin pinging. */
  ready(status?: string): void {
    if (this.readySent) return;
    this.readySent = true;
    const fields: Record<string, string> = { READY: '1' };
    if (status) {
      fields.STATUS = status;
      this.lastStatus = status;
    }
    this.opts.sink.send(fields);
    const every = this.intervalMs;
    if (every === null) return;
    const timers = this.opts.timers ?? realTimers;
    this.handle = timers.setInterval(() => this.ping(), every);
  }

  /**
   * The one-line status `systemctl status` shows (STATUS=), sent only when it changes: the
   * gateway's health in words ("degraded: bus rs485-1: /dev/ttyUSB0 not found …").
   */
  status(text: string): void {
    if (!this.readySent || text === this.lastStatus) return;
    this.lastStatus = text;
    this.opts.sink.send({ STATUS: text });
  }

  ping(): void {
    if (this.opts.healthy && !this.opts.healthy()) return;
    this.opts.sink.send({ WATCHDOG: '1' });
  }

  /** Tell systemd a clean stop is under way (so a slow stop is not taken for a hang) and stop pinging. */
  stopping(): void {
    this.stop();
    if (this.readySent) this.opts.sink.send({ STOPPING: '1' });
  }

  stop(): void {
    if (this.handle === null) return;
    (this.opts.timers ?? realTimers).clearInterval(this.handle);
    this.handle = null;
  }
}
