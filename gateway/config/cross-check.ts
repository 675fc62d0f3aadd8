import { realpathSync } from 'node:fs';
import type { DeviceProfile } from '../core/point.js';
import { crossCheckAlarms } from './cross-check-alarms.js';
import { crossCheckCabinets } from './cross-check-cabinets.js';
import { checkDeviceOptions } from './cross-check-options.js';
import { crossCheckPublicParking } from './cross-check-parking.js';
import { closest, didYouMean } from './did-you-mean.js';
import type { PathSegment, RawProblem } from './problems.js';
import type { BusConfig, BusType, GatewayConfig } from './schema.js';

/**
 * The checks one key alone cannot make: references between sections, uniqueness, and fit
 * between a device, its bus and its profile. They run after the schema passes, so the config
 * here is complete and typed.
 */

const PROFILE_KIND_FOR_BUS: Record<BusType, DeviceProfile['kind']> = {
  'modbus-rtu': 'modbus',
  'modbus-tcp': 'modbus',
  gpio: 'gpio',
  firmata: 'firmata',
};

const BUS_TYPES_FOR_KIND: Record<DeviceProfile['kind'], string> = {
  modbus: 'modbus-rtu or modbus-tcp',
  gpio: 'gpio',
  firmata: 'firmata',
};

function isModbus(bus: BusConfig): boolean {
  return bus.type === 'modbus-rtu' || bus.type === 'modbus-tcp';
}

// Two names for one serial device (by-id symlink and ttyUSB0) are still one device.
function canonicalPort(port: string): string {
  try {
    return realpathSync(port);
  } catch {
    return port;
  }
}

function unknownName(kind: string, name: string, known: readonly string[]): string {
  const hint = closest(name, known);
  if (hint !== undefined) return `unknown ${kind} "${name}" (did you mean ${hint}?)`;
  if (known.length === 0) return `unknown ${kind} "${name}" (none are defined)`;
  if (known.length <= 12) return `unknown ${kind} "${name}" (known: ${[...known].sort().join(', ')})`;
  return `unknown ${kind} "${name}"`;
}

export interface CrossCheckResult {
  problems: RawProblem[];
  warnings: RawProblem[];
}

export function crossCheck(config: GatewayConfig, profiles: ReadonlyMap<string, DeviceProfile>): CrossCheckResult {
  const problems: RawProblem[] = [];
  const warnings: RawProblem[] = [];
  const problem = (path: PathSegment[], message: string) => problems.push({ path, message });

  const busesById = new Map<string, BusConfig>();
  config.buses.forEach((bus, i) => {
    if (busesById.has(bus.id)) {
      const first = config.buses.findIndex((b) => b.id === bus.id);
      problem(['buses', i, 'id'], `duplicate bus id "${bus.id}" (also buses.${first})`);
    } else {
      busesById.set(bus.id, bus);
    }
  });

  config.buses.forEach((bus, i) => {
    if (bus.type === 'gpio' && bus.simulate && bus.backend !== 'simulated')
      problem(['buses', i, 'simulate'], 'only with backend: simulated (a sysfs bus reads the real pins)');
  });

  const portOwner = new Map<string, string>();
  config.buses.forEach((bus, i) => {
    if (bus.type !== 'modbus-rtu' && bus.type !== 'firmata') return;
    const key = canonicalPort(bus.port);
    const owner = portOwner.get(key);
    if (owner !== undefined) problem(['buses', i, 'port'], `${bus.port} is already used by bus "${owner}"`);
    else portOwner.set(key, bus.id);
  });

  const deviceIndex = new Map<string, number>();
  const unitOwner = new Map<string, string>();
  const pinOwner = new Map<string, string>();
  const busIds = [...busesById.keys()];
  const profileNames = [...profiles.keys()];

  config.devices.forEach((dev, i) => {
    const at = (...rest: PathSegment[]): PathSegment[] => ['devices', i, ...rest];

    const firstIndex = deviceIndex.get(dev.id);
    if (firstIndex !== undefined) problem(at('id'), `duplicate device id "${dev.id}" (also devices.${firstIndex})`);
    else deviceIndex.set(dev.id, i);

    const bus = busesById.get(dev.bus);
    if (!bus) problem(at('bus'), unknownName('bus', dev.bus, busIds));

    const profile = profiles.get(dev.profile);
    if (!profile) problem(at('profile'), unknownName('profile', dev.profile, profileNames));

    if (profile && dev.points) {
      const names = profile.points.map((p) => p.name);
      const seen = new Set<string>();
      dev.points.forEach((point, k) => {
        if (!names.includes(point)) {
          problem(at('points', k), `unknown point "${point}" in profile ${profile.name}${didYouMean(point, names)}`);
        } else if (seen.has(point)) {
          problem(at('points', k), `"${point}" is listed twice`);
        }
        seen.add(point);
      });
    }

    if (profile && dev.groupIntervals) {
      const groups = [...new Set(profile.points.map((p) => p.group).filter((g): g is string => !!g))];
      for (const group of Object.keys(dev.groupIntervals)) {
        if (!groups.includes(group)) {
          problem(
            at('groupIntervals', group),
            `profile ${profile.name} has no poll group "${group}"${groups.length ? ` (groups: ${groups.join(', ')})` : ''}${didYouMean(group, groups)}`,
          );
        }
      }
    }

    if (profile) checkDeviceOptions(dev, profile, at, problem);

    if (!bus) return;

    if (profile && profile.kind !== PROFILE_KIND_FOR_BUS[bus.type]) {
      problem(
        at('profile'),
        `profile ${profile.name} is a ${profile.kind} profile and needs a ${BUS_TYPES_FOR_KIND[profile.kind]} bus, but bus "${bus.id}" is ${bus.type}`,
      );
      return;
    }

    if (isModbus(bus)) {
      if (dev.pins !== undefined) problem(at('pins'), `only for gpio/firmata devices; bus "${bus.id}" is ${bus.type}`);
      if (dev.unit === undefined) {
        problem(at('unit'), `required for a device on Modbus bus "${bus.id}" (1–247)`);
      } else if (dev.enabled) {
        // Two devices answering to one unit id garble each other's replies on a shared line.
        const key = `${bus.id}\0${dev.unit}`;
        const owner = unitOwner.get(key);
        if (owner !== undefined)
          problem(at('unit'), `unit ${dev.unit} on bus "${bus.id}" is already used by device "${owner}"`);
        else unitOwner.set(key, dev.id);
      }
      if (profile?.serial && bus.type === 'modbus-rtu') {
        const s = profile.serial;
        if (s.baudRate !== undefined && s.baudRate !== bus.baudRate) {
          warnings.push({
            path: at('bus'),
            message: `profile ${profile.name} ships at ${s.baudRate} baud, bus "${bus.id}" runs at ${bus.baudRate} (fine if the device was reconfigured)`,
          });
        }
      }
      return;
    }

    // gpio / firmata
    if (dev.unit !== undefined) problem(at('unit'), `only for Modbus devices; bus "${bus.id}" is ${bus.type}`);
    const wanted = profile?.pins ?? [];
    // optional pins (the second loop of a pair, spare Firmata channels) may be mapped too
    const known = [...wanted, ...(profile?.optionalPins ?? [])];
    const pins = dev.pins ?? {};
    if (profile) {
      const missing = wanted.filter((name) => pins[name] === undefined);
      if (missing.length > 0) {
        problem(at('pins'), `missing ${missing.join(', ')} (profile ${profile.name} needs pins: ${wanted.join(', ')})`);
      }
      for (const name of Object.keys(pins)) {
        if (!known.includes(name)) {
          const hint = closest(name, known);
          problem(
            at('pins', name),
            hint !== undefined
              ? `unknown pin (did you mean ${hint}?)`
              : `unknown pin (profile ${profile.name} has ${known.length > 0 ? `pins: ${known.join(', ')}` : 'no pins'})`,
          );
        }
      }
    }
    if (!dev.enabled) return;
    for (const [name, pin] of Object.entries(pins)) {
      const key = `${bus.id}\0${pin}`;
      const owner = pinOwner.get(key);
      if (owner !== undefined) problem(at('pins', name), `pin ${pin} on bus "${bus.id}" is already used by ${owner}`);
      else pinOwner.set(key, `${dev.id}.${name}`);
    }
  });

  // Irrigation buttons on the farmer panel must name a writable on/off point of a configured device.
  (config.panel.irrigation ?? []).forEach((relay, i) => {
    const dev = config.devices.find((d) => d.id === relay.device);
    if (!dev) {
      problem(
        ['panel', 'irrigation', i, 'device'],
        unknownName(
          'device',
          relay.device,
          config.devices.map((d) => d.id),
        ),
      );
      return;
    }
    const point = profiles.get(dev.profile)?.points.find((p) => p.name === relay.point);
    if (!profiles.get(dev.profile)) return;
    if (!point)
      problem(['panel', 'irrigation', i, 'point'], `device "${dev.id}" (${dev.profile}) has no point "${relay.point}"`);
    else if (!point.writable)
      problem(['panel', 'irrigation', i, 'point'], `point "${relay.point}" of ${dev.profile} is read-only`);
  });

  // Fail-safe writes run when Node-RED dies: a typo here would only show up at the worst moment.
  (config.flows.failsafe ?? []).forEach((f, i) => {
    const dev = config.devices.find((d) => d.id === f.device);
    if (!dev) {
      problem(
        ['flows', 'failsafe', i, 'device'],
        unknownName(
          'device',
          f.device,
          config.devices.map((d) => d.id),
        ),
      );
      return;
    }
    const profile = profiles.get(dev.profile);
    if (!profile) return;
    const point = profile.points.find((p) => p.name === f.point);
    if (!point)
      problem(['flows', 'failsafe', i, 'point'], `device "${dev.id}" (${dev.profile}) has no point "${f.point}"`);
    else if (!point.writable)
      problem(['flows', 'failsafe', i, 'point'], `point "${f.point}" of ${dev.profile} is read-only`);
  });

  crossCheckCabinets(config, profiles, problem);
  crossCheckAlarms(config, profiles, problem);
  crossCheckPublicParking(config, profiles, problem);

  return { problems, warnings };
}
