import type { BusDriver } from '../core/driver.js';
import type { DeviceProfile } from '../core/point.js';
import { deviceBinding } from '../device-binding.js';
import type { ScheduledDevice } from './scheduler.js';

export interface DevicePollSettings {
  id: string;
  unit?: number;
  pins?: Record<string, number>;
  options?: Record<string, number | string | boolean>;
  interval: number;
  points?: string[];
  groupIntervals?: Record<string, number>;
}

/**
 * Splits a device's points into one poll slot per interval: points of a poll group with its own
 * interval (`groupIntervals`) are read on that cadence, all others on the device's `interval`.
 * Groups that share an interval share a slot, so the planner can still merge their registers.
 */
export function pollSlotsFor(dev: DevicePollSettings, profile: DeviceProfile, bus: BusDriver): ScheduledDevice[] {
  const binding = deviceBinding(dev, profile);
  const wanted = dev.points?.length ? profile.points.filter((p) => dev.points!.includes(p.name)) : profile.points;
  const byInterval = new Map<number, typeof wanted>();
  for (const point of wanted) {
    const interval = (point.group && dev.groupIntervals?.[point.group]) || dev.interval;
    const list = byInterval.get(interval) ?? [];
    list.push(point);
    byInterval.set(interval, list);
  }
  return [...byInterval.entries()]
    .sort(([a], [b]) => a - b)
    .map(([intervalMs, points]) => ({ binding, bus, intervalMs, points }));
}
