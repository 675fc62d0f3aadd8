import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import type { ModbusBus } from '../../drivers/modbus/bus.js';
import { loadProfile, loadProfiles } from '../../hardware/profiles.js';
import { type BusSettings, busSettingsFromSpec, createBusDriver } from '../buses.js';
import { validateWrite } from '../commands/validate-write.js';
import type { BusDriver, DeviceBinding } from '../core/driver.js';
import { LangbiangError } from '../core/errors.js';
import type { DeviceProfile, PointDef } from '../core/point.js';
import type { PointValue } from '../core/reading.js';
import { deviceBinding } from '../device-binding.js';
import { parseBusSpec, parseUnitRange } from './bus-spec.js';
import { loadValidConfig } from './config-arg.js';
import { formatTable } from './output.js';

interface DeviceTarget {
  bus: BusDriver;
  binding: DeviceBinding;
}

function parseTimeout(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(String(text).replace(/ms$/, ''));
  if (!Number.isFinite(n) || n < 10 || n > 60_000)
    throw new LangbiangError('USAGE', `--timeout ${text}: expected milliseconds between 10 and 60000`);
  return n;
}

/** Open a bus for a one-shot; on failure stop its background reconnects so the command can exit. */
async function openBus(settings: BusSettings): Promise<BusDriver> {
  const bus = await createBusDriver(settings);
  try {
    await bus.open();
  } catch (err) {
    await bus.close().catch(() => {});
    throw err;
  }
  return bus;
}

interface ResolvedTarget {
  settings: BusSettings;
  binding: DeviceBinding;
}

/**
 * Resolve `--config F DEVICE` or `--bus S --unit N --profile P` to a bus and a device, reading the
 * config and the profile once and touching no port yet.
 */
function resolveTarget(
  o: { config?: string; bus?: string; unit?: string; profile?: string; timeout?: string },
  device?: string,
): ResolvedTarget {
  if (o.config) {
    if (!device) throw new LangbiangError('USAGE', 'name the device: langbiang read --config FILE DEVICE');
    const config = loadValidConfig(o.config);
    const dev = config.devices.find((d) => d.id === device);
    if (!dev) {
      const cabinet = config.cabinets.some((c) => c.id === device);
      throw new LangbiangError(
        'UNKNOWN_DEVICE',
        cabinet
          ? `"${device}" is a cabinet: its schedule and override commands go to the running gateway (console or MQTT), not to a bus`
          : `no device "${device}" in ${o.config} (devices: ${config.devices.map((d) => d.id).join(', ')})`,
      );
    }
    const settings = config.buses.find((b) => b.id === dev.bus)! as BusSettings;
    const profile = loadProfile(dev.profile, config.gateway.profilesDir ? [config.gateway.profilesDir] : []);
    return { settings, binding: deviceBinding(dev, profile) };
  }
  if (!o.bus || !o.unit || !o.profile) {
    throw new LangbiangError('USAGE', 'give either --config FILE DEVICE, or --bus SPEC --unit N --profile NAME');
  }
  const unit = Number(o.unit);
  if (!Number.isInteger(unit) || unit < 1 || unit > 247)
    throw new LangbiangError('USAGE', `--unit ${o.unit}: Modbus unit ids are 1-247`);
  const settings = busSettingsFromSpec(parseBusSpec(o.bus), parseTimeout(o.timeout, 1000));
  return { settings, binding: { id: `unit-${unit}`, profile: loadProfile(o.profile), unit } };
}

async function openTarget(resolved: ResolvedTarget): Promise<DeviceTarget> {
  return { bus: await openBus(resolved.settings), binding: resolved.binding };
}

function valueText(v: PointValue): string {
  if (v.value === null || v.value === undefined) return '';
  return String(v.value);
}

export async function runRead(o: {
  device?: string;
  config?: string;
  bus?: string;
  unit?: string;
  profile?: string;
  timeout?: string;
  json?: boolean;
}): Promise<void> {
  const target = await openTarget(resolveTarget(o, o.device));
  try {
    const points = target.binding.profile.points;
    const values = await target.bus.readPoints(target.binding, points);
    const byName = new Map<string, PointDef>(points.map((p) => [p.name, p]));
    if (o.json) {
      const out = values.map((v) => ({
        point: v.point,
        value: v.value,
        unit: byName.get(v.point)?.unit ?? null,
        quality: v.quality,
        ...(v.error ? { error: v.error } : {}),
      }));
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    } else {
      const rows = values.map((v) => [
        v.point,
        valueText(v),
        byName.get(v.point)?.unit ?? '',
        v.quality === 'good' ? 'good' : `${v.quality}${v.error ? ` (${v.error})` : ''}`,
      ]);
      process.stdout.write(
        `${target.binding.id} (${target.binding.profile.name})\n${formatTable(['point', 'value', 'unit', 'quality'], rows)}\n`,
      );
    }
    if (values.length > 0 && values.every((v) => v.quality !== 'good')) process.exitCode = 1;
  } finally {
    await target.bus.close();
  }
}

export async function runWrite(o: {
  args: string[];
  config?: string;
  bus?: string;
  unit?: string;
  profile?: string;
  timeout?: string;
  json?: boolean;
}): Promise<void> {
  const args = [...o.args];
  const expected = o.config ? 3 : 2;
  if (args.length !== expected) {
    throw new LangbiangError(
      'USAGE',
      o.config
        ? 'usage: langbiang write --config FILE DEVICE POINT VALUE'
        : 'usage: langbiang write --bus SPEC --unit N --profile NAME POINT VALUE',
    );
  }
  const [pointName, rawValue] = args.slice(-2) as [string, string];
  // Validate against the profile before touching the bus: a refused write never opens the port.
  const resolved = resolveTarget(o, args[0]);
  const { point, value } = validateWrite(resolved.binding.profile, pointName, rawValue);
  const target = await openTarget(resolved);
  try {
    // The write itself goes through the command router, as from the console or the city: the same
    // checks, per-device queue, timeout, read-back and result codes. This is a separate process from
    // a running gateway, so its audit is this output, not the gateway's event log.
    const { CommandRouter } = await import('../commands/router.js');
    const { SystemClock } = await import('../clock/index.js');
    const router = new CommandRouter({
      clock: new SystemClock({ assumeSynced: true }),
      devices: new Map([
        [target.binding.id, { binding: target.binding, bus: target.bus, busId: target.bus.id, enabled: true }],
      ]),
    });
    const result = await router.execute({
      id: `cli-${randomUUID()}`,
      source: 'cli',
      actor: localUser(),
      device: target.binding.id,
      point: point.name,
      value,
    });
    if (!result.ok)
      throw new LangbiangError(
        result.code ?? 'DEVICE_ERROR',
        `${target.binding.id}.${point.name}: ${result.message ?? result.code}`,
      );
    const out = {
      ok: true,
      device: target.binding.id,
      point: point.name,
      value,
      readBack: result.readBack ?? null,
      ...(result.message ? { message: result.message } : {}),
    };
    if (o.json) process.stdout.write(`${JSON.stringify(out)}\n`);
    else
      process.stdout.write(
        `${target.binding.id}.${point.name} = ${value}${point.unit ? ` ${point.unit}` : ''} (read back: ${out.readBack ?? result.message ?? 'n/a'})\n`,
      );
  } finally {
    await target.bus.close();
  }
}

function localUser(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

export async function runScan(o: { bus: string; units: string; timeout: string; json?: boolean }): Promise<void> {
  const units = parseUnitRange(o.units);
  const timeout = parseTimeout(o.timeout, 200);
  const spec = parseBusSpec(o.bus);
  // scan speaks Modbus only: its raw reads are the driver's, not the BusDriver interface's
  const bus = (await openBus(busSettingsFromSpec(spec, timeout))) as ModbusBus;
  const { scanUnits } = await import('../../drivers/modbus/scan.js');
  const found: { unit: number; answeredWith: string; profiles: string[] }[] = [];
  try {
    const isTty = process.stderr.isTTY;
    let done = 0;
    const answered = await scanUnits(bus, {
      units,
      onProgress: (unit: number, ok: boolean) => {
        done++;
        if (isTty)
          process.stderr.write(`\rscanning unit ${unit} (${done}/${units.length})${ok ? ' — answered' : ''}   `);
        else if (ok || done % 25 === 0 || done === units.length)
          process.stderr.write(`scanned ${done}/${units.length}${ok ? `: unit ${unit} answered` : ''}\n`);
      },
    });
    if (isTty) process.stderr.write('\n');
    const profiles = [...loadProfiles().values()].filter((p) => p.kind === 'modbus' && p.identify);
    for (const a of answered) {
      found.push({ unit: a.unit, answeredWith: a.answeredWith, profiles: await guessProfiles(bus, a.unit, profiles) });
    }
  } finally {
    await bus.close();
  }
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify(
        found.map((f) => ({ unit: f.unit, answeredWith: f.answeredWith, profiles: f.profiles })),
        null,
        2,
      )}\n`,
    );
  } else if (found.length === 0) {
    process.stdout.write(`no unit answered on ${o.bus}\n`);
  } else {
    for (const f of found) {
      process.stdout.write(
        `unit ${f.unit}: answered (${f.answeredWith})${f.profiles.length ? `; looks like ${f.profiles.join(' or ')}` : ''}\n`,
      );
    }
  }
}

/** A profile fits when its identify registers read back and every word lies in its range. */
async function guessProfiles(bus: ModbusBus, unit: number, profiles: DeviceProfile[]): Promise<string[]> {
  const matches: string[] = [];
  for (const profile of profiles) {
    const id = profile.identify!;
    try {
      const words = await bus.readRaw(unit, id.function, id.address, id.count);
      if (words.every((w) => (id.min === undefined || w >= id.min) && (id.max === undefined || w <= id.max)))
        matches.push(profile.name);
    } catch {
      // an exception, a timeout or a garbled answer: not this profile
    }
  }
  return matches;
}
