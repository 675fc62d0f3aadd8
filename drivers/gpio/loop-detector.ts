import type { DeviceBinding } from '../../gateway/core/driver.js';
import { LangbiangError } from '../../gateway/core/errors.js';
import type { PointDef } from '../../gateway/core/point.js';
import type { PointValue } from '../../gateway/core/reading.js';
import { ArmedInputs, type InputWiring } from './armed-inputs.js';
import type { GpioBackend } from './backend.js';
import { TrafficMeter } from './traffic-meter.js';

/** Default bounce filter: relay and opto contacts settle within a few ms; a real gap between two cars is hundreds. */
export const DEFAULT_MIN_PULSE_MS = 10;

export interface LoopDetectorSettings {
  presence: number;
  presenceB?: number;
  loopDistance?: number;
  minPulseMs: number;
  activeLow: boolean;
}

/** The device's pins and options, checked (the config cross-check catches the same earlier). */
export function loopDetectorSettings(device: DeviceBinding): LoopDetectorSettings {
  const pins = device.pins ?? {};
  const opts = device.options ?? {};
  const where = `device ${device.id}`;
  const presence = pins.presence;
  if (presence === undefined) throw new LangbiangError('CONFIG_INVALID', `${where}: pins.presence is required`);
  const num = (key: string): number | undefined => {
    const v = opts[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
      throw new LangbiangError(
        'CONFIG_INVALID',
        `${where}: options.${key} must be a positive number, got ${JSON.stringify(v)}`,
      );
    return v;
  };
  const s: LoopDetectorSettings = {
    presence,
    minPulseMs: num('minPulseMs') ?? DEFAULT_MIN_PULSE_MS,
    activeLow: opts.activeLow === true,
  };
  if (pins.presence_b !== undefined) {
    const d = num('loopDistance');
    if (d === undefined)
      throw new LangbiangError(
        'CONFIG_INVALID',
        `${where}: options.loopDistance (metres between the two loops) is required with pins.presence_b`,
      );
    s.presenceB = pins.presence_b;
    s.loopDistance = d;
  }
  return s;
}

/**
 * One loop detector (a lane) on a GPIO backend: watches its presence input(s), filters bounce,
 * and hands out the TrafficFlowObserved measures of each interval between reads.
 */
export class LoopDetector {
  private inputs: ArmedInputs | null = null;
  private meter!: TrafficMeter;

  private constructor(
    readonly device: DeviceBinding,
    readonly settings: LoopDetectorSettings,
    private readonly backend: GpioBackend,
  ) {}

  static async arm(device: DeviceBinding, backend: GpioBackend): Promise<LoopDetector> {
    const s = loopDetectorSettings(device);
    const det = new LoopDetector(device, s, backend);
    backend.describeLane?.({
      a: s.presence,
      ...(s.presenceB !== undefined ? { b: s.presenceB, distance: s.loopDistance } : {}),
    });
    det.meter = new TrafficMeter({
      minPulseMs: s.minPulseMs,
      start: backend.now(),
      ...(s.loopDistance !== undefined ? { loopDistance: s.loopDistance } : {}),
    });
    const wiring: InputWiring[] = [{ pin: s.presence, onEdge: (level, t) => det.meter.edgeA(level, t) }];
    if (s.presenceB !== undefined) wiring.push({ pin: s.presenceB, onEdge: (level, t) => det.meter.edgeB(level, t) });
    det.inputs = await ArmedInputs.arm(backend, wiring, s.activeLow);
    return det;
  }

  read(points: readonly PointDef[]): PointValue[] {
    this.backend.sync?.();
    const m = this.meter.take(this.backend.now());
    return points.map((p): PointValue => {
      switch (p.name) {
        case 'intensity':
          return { point: p.name, value: m.intensity, quality: 'good' };
        case 'occupancy':
          return { point: p.name, value: m.occupancy, quality: 'good' };
        case 'average_speed':
          return {
            point: p.name,
            value: m.averageSpeed,
            quality: m.averageSpeed !== null && p.max !== undefined && m.averageSpeed > p.max ? 'out_of_range' : 'good',
          };
        default:
          return {
            point: p.name,
            value: null,
            quality: 'decode_error',
            error: `the loop-detector driver has no point "${p.name}"`,
          };
      }
    });
  }

  async close(): Promise<void> {
    await this.inputs?.close();
  }
}
