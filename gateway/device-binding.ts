import type { DeviceBinding } from './core/driver.js';
import type { DeviceProfile } from './core/point.js';

/** The part of a configured device a driver needs. */
export interface BindableDevice {
  id: string;
  unit?: number;
  pins?: Record<string, number>;
  options?: Record<string, number | string | boolean>;
}

/** A configured device as its bus driver sees it: the one place a config device becomes a binding. */
export function deviceBinding(dev: BindableDevice, profile: DeviceProfile): DeviceBinding {
  return {
    id: dev.id,
    profile,
    unit: dev.unit,
    pins: dev.pins,
    ...(dev.options ? { options: dev.options } : {}),
  };
}
