import type { BusHealth, HealthState } from './core/driver.js';
import type { EventBus, GatewayHealthChange } from './core/events.js';
import { healthProblems } from './health.js';

const DEFAULT_INTERVAL_MS = 1000;

export interface DeviceHealthWatchOptions {
  /** the gateway's one health report (gateway/health.ts busReport over the running drivers) */
  report: () => readonly BusHealth[];
  events: EventBus;
  /** how often the report is compared with the last one (default 1000 ms) */
  intervalMs?: number;
  onError?: (err: unknown) => void;
}

/**
 * The one source of health changes. Emits `device-health` on the event bus whenever a device's
 * health state changes (ok → offline, → bus_error, back to ok …), and `gateway-health` whenever the
 * gateway's problems in words change (the first check included). The HTTP live stream forwards
 * the first to the farmer's panel, so a device that stops answering shows as offline within a
 * second or two of the driver giving up on it; `langbiang start` logs the second and puts it in
 * systemd's status line. Nobody else compares health reports on a timer of their own.
 *
 * It compares the health report once a second instead of hooking every driver: each driver
 * already keeps its devices' state, a bus that closes changes all its devices at once, and the
 * report is the same one /healthz and the console read, so the panel cannot tell another story.
 */
export class DeviceHealthWatch {
  private readonly states = new Map<string, HealthState>();
  private timer: NodeJS.Timeout | null = null;
  private health: GatewayHealthChange | null = null;
  private healthKey = '';

  constructor(private readonly opts: DeviceHealthWatchOptions) {}

  start(): void {
    if (this.timer) return;
    this.check();
    this.timer = setInterval(() => this.check(), this.opts.intervalMs ?? DEFAULT_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The gateway's health at the last check (null before the first). */
  get current(): GatewayHealthChange | null {
    return this.health;
  }

  /**
   * Emits `device-health` for each device whose state differs from the last check, and
   * `gateway-health` when the problems differ; returns how many devices changed.
   */
  check(): number {
    let buses: readonly BusHealth[];
    try {
      buses = this.opts.report();
    } catch (err) {
      this.opts.onError?.(err);
      return 0;
    }
    let changed = 0;
    for (const bus of buses) {
      for (const device of bus.devices) {
        if (this.states.get(device.device) === device.state) continue;
        this.states.set(device.device, device.state);
        this.opts.events.emit('device-health', device);
        changed++;
      }
    }
    const problems = healthProblems(buses);
    const key = JSON.stringify(problems);
    if (this.health === null || key !== this.healthKey) {
      this.healthKey = key;
      this.health = { status: problems.length > 0 ? 'degraded' : 'ok', problems };
      this.opts.events.emit('gateway-health', this.health);
    }
    return changed;
  }
}
