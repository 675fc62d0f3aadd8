import type { DeviceProfile } from '../core/point.js';
import { closest } from './did-you-mean.js';
import type { PathSegment } from './problems.js';
import type { GatewayConfig } from './schema.js';

/** The public car-park page names devices that count free spaces (a parking-counter). */
export function crossCheckPublicParking(
  config: GatewayConfig,
  profiles: ReadonlyMap<string, DeviceProfile>,
  problem: (path: PathSegment[], message: string) => void,
): void {
  const devices = new Map(config.devices.map((d) => [d.id, d]));
  const pub = config.panel.publicParking;
  pub.carParks.forEach((id, i) => {
    const at: PathSegment[] = ['panel', 'publicParking', 'carParks', i];
    const dev = devices.get(id);
    if (!dev) {
      const hint = closest(id, [...devices.keys()]);
      problem(at, `unknown device "${id}"${hint ? ` (did you mean ${hint}?)` : ''}`);
      return;
    }
    const profile = profiles.get(dev.profile);
    if (profile && !profile.points.some((p) => p.name === 'free_spaces'))
      problem(at, `"${id}" (${dev.profile}) counts no free spaces; use a parking-counter device`);
  });
  config.parkingSigns.forEach((s, i) => {
    const at: PathSegment[] = ['parkingSigns', i];
    const park = devices.get(s.carPark);
    if (!park) problem([...at, 'carPark'], `unknown device "${s.carPark}"`);
    else if (!profiles.get(park.profile)?.points.some((p) => p.name === 'free_spaces'))
      problem(
        [...at, 'carPark'],
        `"${s.carPark}" (${park.profile}) counts no free spaces; use a parking-counter device`,
      );
    const sign = devices.get(s.device);
    if (!sign) problem([...at, 'device'], `unknown device "${s.device}"`);
    else {
      const p = profiles.get(sign.profile)?.points.find((q) => q.name === s.point);
      if (profiles.has(sign.profile) && !p?.writable)
        problem([...at, 'point'], `"${s.point}" is not a writable point of ${sign.profile}`);
    }
  });
  if (pub.enabled && pub.carParks.length === 0)
    problem(['panel', 'publicParking', 'carParks'], 'name at least one car park to show, or disable the page');
}
