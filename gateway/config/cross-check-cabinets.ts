import type { DeviceProfile } from '../core/point.js';
import { closest } from './did-you-mean.js';
import type { PathSegment } from './problems.js';
import type { GatewayConfig } from './schema.js';

/**
 * Cabinets refer to devices and their points: the dimmer and contactor must be writable points
 * of configured devices, the meter a numeric point. Cabinet ids share the command address space
 * with device ids, so they must not collide.
 */
export function crossCheckCabinets(
  config: GatewayConfig,
  profiles: ReadonlyMap<string, DeviceProfile>,
  problem: (path: PathSegment[], message: string) => void,
): void {
  const devices = new Map(config.devices.map((d) => [d.id, d]));
  const deviceIds = [...devices.keys()];
  const seen = new Map<string, number>();
  config.cabinets.forEach((cab, i) => {
    const at = (...rest: PathSegment[]): PathSegment[] => ['cabinets', i, ...rest];
    const first = seen.get(cab.id);
    if (first !== undefined) problem(at('id'), `duplicate cabinet id "${cab.id}" (also cabinets.${first})`);
    else seen.set(cab.id, i);
    if (devices.has(cab.id))
      problem(at('id'), `"${cab.id}" is already a device id; commands address both the same way`);

    const refs: [string, { device: string; point: string } | undefined, 'write' | 'read'][] = [
      ['dimmer', cab.dimmer, 'write'],
      ['contactor', cab.contactor, 'write'],
      ['meter', cab.meter, 'read'],
    ];
    for (const [key, ref, use] of refs) {
      if (!ref) continue;
      const dev = devices.get(ref.device);
      if (!dev) {
        const hint = closest(ref.device, deviceIds);
        problem(at(key, 'device'), `unknown device "${ref.device}"${hint ? ` (did you mean ${hint}?)` : ''}`);
        continue;
      }
      const profile = profiles.get(dev.profile);
      if (!profile) continue; // reported on the device
      const point = profile.points.find((p) => p.name === ref.point);
      if (!point) {
        const hint = closest(
          ref.point,
          profile.points.map((p) => p.name),
        );
        problem(
          at(key, 'point'),
          `profile ${profile.name} has no point "${ref.point}"${hint ? ` (did you mean ${hint}?)` : ''}`,
        );
        continue;
      }
      if (use === 'write' && !point.writable)
        problem(at(key, 'point'), `point "${ref.point}" of ${profile.name} is read-only`);
      if (key === 'dimmer' && point.type === 'bit')
        problem(at(key, 'point'), `"${ref.point}" is an on/off point, not a dimming level`);
      if (key === 'dimmer' && cab.dimmer.curve === 'dali' && point.max !== undefined && point.max !== 254) {
        problem(
          at('dimmer', 'curve'),
          `dali needs a 0–254 level point; "${ref.point}" goes to ${point.max} (use curve: linear)`,
        );
      }
      if (key === 'meter' && point.type === 'string') problem(at(key, 'point'), `"${ref.point}" is not a number`);
    }
    const f = cab.feeder;
    if (f.minCurrentA !== undefined && f.maxCurrentA !== undefined && f.minCurrentA >= f.maxCurrentA) {
      problem(at('feeder', 'minCurrentA'), `must be below maxCurrentA (${f.maxCurrentA})`);
    }
    if ((f.minCurrentA !== undefined || f.maxCurrentA !== undefined) && !cab.meter) {
      problem(at('feeder'), 'current limits need a meter: add meter: { device: … }');
    }
  });
}
