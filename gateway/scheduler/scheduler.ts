import type { Clock } from '../core/clock.js';
import type { BusDriver, DeviceBinding } from '../core/driver.js';
import type { PointDef } from '../core/point.js';
import type { PointValue, Reading } from '../core/reading.js';

export interface ScheduledDevice {
  binding: DeviceBinding;
  bus: BusDriver;
  intervalMs: number;
  points: readonly PointDef[];
}

export interface DevicePollStats {
  device: string;
  polls: number;
  /** a poll was due while the previous one was still running: skipped, not queued, so a slow bus cannot pile up */
  overruns: number;
  lastPollMs?: number;
  lastPollAt?: number;
}

interface Slot extends ScheduledDevice {
  dueMono: number;
  running: Promise<void> | null;
  stats: DevicePollStats;
}

export interface SchedulerOptions {
  clock: Clock;
  /** where readings go (the store's append); called once per device poll */
  sink: (readings: Reading[]) => void;
  onError?: (device: string, err: unknown) => void;
  /** spread the first polls of many devices over this window so a bus does not get them all at once */
  startSpreadMs?: number;
}

/**
 * Asks each device's bus for its points when they are due. Timing is on the monotonic clock, so
 * an NTP step never makes polls burst or stall. Drivers serialise per bus; the scheduler only
 * decides when, and never lets one device have two polls in flight.
 */
export class Scheduler {
  private readonly slots: Slot[];
  /**
   * `device\0point` of points whose unit refuses them: the driver says so on every poll (without
   * touching the bus), the store hears it once, so a refused register costs one reading, not one per poll.
   */
  private readonly reportedUnsupported = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;

  constructor(
    devices: readonly ScheduledDevice[],
    private readonly opts: SchedulerOptions,
  ) {
    this.slots = devices.map((d) => ({
      ...d,
      dueMono: 0,
      running: null,
      stats: { device: d.binding.id, polls: 0, overruns: 0 },
    }));
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const now = this.opts.clock.monoNow();
    const spread = this.opts.startSpreadMs ?? 0;
    this.slots.forEach((s, i) => {
      s.dueMono = now + (this.slots.length > 1 ? Math.floor((spread * i) / this.slots.length) : 0);
    });
    this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.allSettled(this.slots.map((s) => s.running).filter(Boolean));
  }

  stats(): DevicePollStats[] {
    return this.slots.map((s) => ({ ...s.stats }));
  }

  private tick(): void {
    if (this.stopped) return;
    const now = this.opts.clock.monoNow();
    let next = Number.POSITIVE_INFINITY;
    for (const slot of this.slots) {
      if (slot.dueMono <= now) {
        if (slot.running) {
          slot.stats.overruns++;
        } else {
          slot.running = this.poll(slot).finally(() => {
            slot.running = null;
          });
        }
        // Keep the grid (due += interval) so intervals do not drift; if we fell far behind, re-anchor on now.
        slot.dueMono += slot.intervalMs;
        if (slot.dueMono <= now) slot.dueMono = now + slot.intervalMs;
      }
      next = Math.min(next, slot.dueMono);
    }
    const wait = Math.max(0, Math.min(next - now, 60_000));
    this.timer = setTimeout(() => this.tick(), wait);
  }

  private onceUnsupported(device: string, values: PointValue[]): PointValue[] {
    return values.filter((v) => {
      const k = `${device}\u0000${v.point}`;
      if (v.quality !== 'unsupported') {
        this.reportedUnsupported.delete(k);
        return true;
      }
      if (this.reportedUnsupported.has(k)) return false;
      this.reportedUnsupported.add(k);
      return true;
    });
  }

  private async poll(slot: Slot): Promise<void> {
    const { clock } = this.opts;
    const startMono = clock.monoNow();
    try {
      const values = await slot.bus.readPoints(slot.binding, slot.points);
      const ts = clock.wallNow();
      const mono = clock.monoNow();
      const synced = clock.isSynced();
      const units = new Map(slot.points.map((p) => [p.name, p.unit]));
      const readings: Reading[] = this.onceUnsupported(slot.binding.id, values).map((v) => ({
        device: slot.binding.id,
        point: v.point,
        value: v.value,
        quality: v.quality,
        ts,
        mono,
        bootId: clock.bootId,
        synced,
        unit: units.get(v.point),
      }));
      slot.stats.polls++;
      slot.stats.lastPollMs = mono - startMono;
      slot.stats.lastPollAt = ts;
      this.opts.sink(readings);
    } catch (err) {
      // Drivers report device trouble as qualities; reaching here is a bug or a store failure.
      this.opts.onError?.(slot.binding.id, err);
    }
  }
}
