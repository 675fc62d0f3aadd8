import type { GatewayConfig } from '../config/index.js';
import type { BusDriver } from '../core/driver.js';
import type { DeviceProfile } from '../core/point.js';
import { deviceBinding } from '../device-binding.js';
import type { RouterDevice } from './router.js';

/** Fills the router's device table from the config: every device whose profile is known. */
export function fillCommandDevices(
  into: Map<string, RouterDevice>,
  config: GatewayConfig,
  profiles: ReadonlyMap<string, DeviceProfile>,
  buses: ReadonlyMap<string, BusDriver>,
): void {
  into.clear();
  for (const dev of config.devices) {
    const profile = profiles.get(dev.profile);
    if (!profile) continue;
    into.set(dev.id, {
      binding: deviceBinding(dev, profile),
      bus: buses.get(dev.bus),
      busId: dev.bus,
      enabled: dev.enabled !== false,
    });
  }
}
