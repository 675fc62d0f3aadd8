import type { CabinetConfig } from '../config/cabinet-schema.js';
import type { Clock } from '../core/clock.js';
import type { CommandExecutor } from '../core/command.js';
import type { EventBus } from '../core/events.js';
import type { EventRecorder } from '../core/outbox.js';
import type { DeviceProfile } from '../core/point.js';
import { Cabinet, type CabinetDeps, type CabinetSettings, type CabinetStatus } from './cabinet.js';
import type { Site } from './plan.js';

export { Cabinet, type CabinetSettings, type CabinetStatus, type Override } from './cabinet.js';
export { levelToPoint, pointToFraction } from './levels.js';
export { SchedulePlan, type ScheduleSpec, type Site } from './plan.js';

export interface CabinetControllerOptions {
  cabinets: readonly CabinetConfig[];
  /** profile of each device id, for the dimmer's range */
  profileOf: (device: string) => DeviceProfile | undefined;
  site: Site;
  clock: Clock;
  executor: CommandExecutor;
  settings?: CabinetSettings;
  alarms?: EventRecorder;
  /** polled readings (for fault checks) */
  events?: EventBus;
  log?: CabinetDeps['log'];
  /** how often the schedule is evaluated (default 15 s); tests drive tick() themselves */
  intervalMs?: number;
}

/**
 * All cabinets of a gateway: evaluates their schedules on a timer from the gateway's own clock,
 * and feeds them the polled readings for fault checks.
 */
export class CabinetController {
  readonly cabinets: Cabinet[];
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly opts: CabinetControllerOptions) {
    this.cabinets = opts.cabinets.map((cfg) => {
      const point = opts.profileOf(cfg.dimmer.device)?.points.find((p) => p.name === cfg.dimmer.point);
      return new Cabinet(cfg, {
        clock: opts.clock,
        site: opts.site,
        executor: opts.executor,
        dimmerMax: point?.max ?? 254,
        ...(opts.settings ? { settings: opts.settings } : {}),
        ...(opts.alarms ? { alarms: opts.alarms } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      });
    });
  }

  get(id: string): Cabinet | undefined {
    return this.cabinets.find((c) => c.id === id);
  }

  start(): void {
    if (this.timer) return;
    this.unsubscribe =
      this.opts.events?.on('readings', (readings) => {
        for (const c of this.cabinets) c.onReadings(readings);
      }) ?? null;
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.opts.intervalMs ?? 15_000);
    this.timer.unref();
  }

  /** Evaluates every cabinet now; resolves when their switching is done. */
  async tick(): Promise<void> {
    await Promise.all(this.cabinets.map((c) => c.tick()));
  }

  status(): CabinetStatus[] {
    return this.cabinets.map((c) => c.status());
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    await Promise.all(this.cabinets.map((c) => c.idle()));
  }
}
