import type { DeviceProfile, PointDef } from '../core/point.js';
import { closest } from './did-you-mean.js';
import type { PathSegment } from './problems.js';
import type { GatewayConfig } from './schema.js';

/**
 * Alarm rules refer to devices and points: the watched point must be a number a configured
 * device reports, each action's point a writable point of a configured device. Ids are unique.
 */
export function crossCheckAlarms(
  config: GatewayConfig,
  profiles: ReadonlyMap<string, DeviceProfile>,
  problem: (path: PathSegment[], message: string) => void,
): void {
  const devices = new Map(config.devices.map((d) => [d.id, d]));
  const deviceIds = [...devices.keys()];
  const seen = new Map<string, number>();

  const pointOf = (path: PathSegment[], device: string, point: string): PointDef | undefined => {
    const dev = devices.get(device);
    if (!dev) {
      const hint = closest(device, deviceIds);
      problem([...path, 'device'], `unknown device "${device}"${hint ? ` (did you mean ${hint}?)` : ''}`);
      return undefined;
    }
    const profile = profiles.get(dev.profile);
    if (!profile) return undefined; // reported on the device
    const p = profile.points.find((q) => q.name === point);
    if (!p) {
      const hint = closest(
        point,
        profile.points.map((q) => q.name),
      );
      problem(
        [...path, 'point'],
        `profile ${profile.name} has no point "${point}"${hint ? ` (did you mean ${hint}?)` : ''}`,
      );
    }
    return p;
  };

  config.alarms.forEach((rule, i) => {
    const at: PathSegment[] = ['alarms', i];
    const first = seen.get(rule.id);
    if (first !== undefined) problem([...at, 'id'], `duplicate alarm id "${rule.id}" (also alarms.${first})`);
    else seen.set(rule.id, i);

    const watched = pointOf(at, rule.device, rule.point);
    if (watched?.type === 'string') problem([...at, 'point'], `"${rule.point}" is not a number`);

    rule.actions.forEach((action, j) => {
      const path: PathSegment[] = [...at, 'actions', j];
      const p = pointOf(path, action.device, action.point);
      if (p && !p.writable) problem([...path, 'point'], `point "${action.point}" of ${action.device} is read-only`);
    });
  });
}
