import type { GatewayConfig } from './config/schema.js';
import type { DeviceProfile } from './core/point.js';

/** A latest reading as the store gives it. */
export interface LatestReading {
  device: string;
  point: string;
  value: unknown;
  unit?: string;
  quality: string;
}

/** How many values of each device the summary line shows: the profile's first points, its key ones. */
export const KEY_VALUES_PER_DEVICE = 3;
/** A line a person can still read: past this many devices, the rest are counted, not listed. */
export const DEVICES_PER_LINE = 12;

function shown(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(2)));
  return String(value);
}

/**
 * The periodic "readings stored" line's values: every enabled device in config order, each with
 * the first measured points of its profile in the profile's order (a soil probe's moisture comes first, as
 * its profile lists it), `soil-a1 moisture=31.2 % temperature=22.4 °C ec=512 µS/cm`. A point with
 * no good reading shows its quality; a device with no reading yet says so.
 */
export function keyValuesSummary(
  config: Pick<GatewayConfig, 'devices'>,
  profiles: ReadonlyMap<string, DeviceProfile> | undefined,
  latest: readonly LatestReading[],
  perDevice = KEY_VALUES_PER_DEVICE,
  maxDevices = DEVICES_PER_LINE,
): string {
  const byKey = new Map(latest.map((r) => [`${r.device}\u0000${r.point}`, r]));
  const parts: string[] = [];
  const enabled = config.devices.filter((d) => d.enabled !== false);
  for (const dev of enabled.slice(0, maxDevices)) {
    const profile = profiles?.get(dev.profile);
    const polled = (profile?.points ?? []).filter((p) => !dev.points?.length || dev.points.includes(p.name));
    // measurements before settings (a sensor's correction offsets); a relay board has only settings
    const measured = polled.filter((p) => !p.writable);
    const names = (measured.length > 0 ? measured : polled).slice(0, perDevice).map((p) => p.name);
    const values = names.flatMap((n) => {
      const r = byKey.get(`${dev.id}\u0000${n}`);
      if (!r) return [];
      if (r.quality !== 'good') return [`${n}=${r.quality}`];
      if (r.value === null || r.value === undefined) return [`${n}=—`];
      return [`${n}=${shown(r.value)}${r.unit ? ` ${r.unit}` : ''}`];
    });
    parts.push(`${dev.id} ${values.length > 0 ? values.join(' ') : '(no reading yet)'}`);
  }
  const more = enabled.length - maxDevices;
  if (more > 0) parts.push(`(+${more} more device${more === 1 ? '' : 's'}: langbiang status, the console)`);
  return parts.join(' | ');
}
