import type { DeviceProfile } from '../core/point.js';
import { closest } from './did-you-mean.js';
import type { PathSegment } from './problems.js';
import type { GatewayConfig } from './schema.js';

type Device = GatewayConfig['devices'][number];
type Problem = (path: PathSegment[], message: string) => void;

/**
 * A device's `options` against what its profile declares: known names (with did-you-mean), the
 * declared type and range, and options a mapped pin makes required (a loop pair needs its spacing).
 */
export function checkDeviceOptions(
  dev: Device,
  profile: DeviceProfile,
  at: (...p: PathSegment[]) => PathSegment[],
  problem: Problem,
): void {
  const declared = profile.options ?? {};
  const names = Object.keys(declared);
  const given = dev.options ?? {};
  for (const [name, value] of Object.entries(given)) {
    const def = declared[name];
    if (!def) {
      const hint = closest(name, names);
      problem(
        at('options', name),
        hint !== undefined
          ? `unknown option (did you mean ${hint}?)`
          : `unknown option (profile ${profile.name} has ${names.length > 0 ? `options: ${names.join(', ')}` : 'no options'})`,
      );
      continue;
    }
    if (typeof value !== def.type) {
      problem(at('options', name), `expected a ${def.type}, got ${JSON.stringify(value)}`);
      continue;
    }
    if (typeof value === 'number') {
      const unit = def.unit ? ` ${def.unit}` : '';
      if (def.min !== undefined && value < def.min)
        problem(at('options', name), `must be at least ${def.min}${unit}, got ${value}`);
      if (def.max !== undefined && value > def.max)
        problem(at('options', name), `must be at most ${def.max}${unit}, got ${value}`);
    }
  }
  for (const [name, def] of Object.entries(declared)) {
    if (def.requiredWithPin && dev.pins?.[def.requiredWithPin] !== undefined && given[name] === undefined) {
      problem(
        at('options'),
        `missing ${name} (required with pins.${def.requiredWithPin}${def.description ? `: ${def.description.toLowerCase()}` : ''})`,
      );
    }
  }
}
