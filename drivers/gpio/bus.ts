import type { BusDriver, BusHealth, DeviceBinding, DeviceHealth } from '../../gateway/core/driver.js';
import { describeError, LangbiangError } from '../../gateway/core/errors.js';
import type { PointDef } from '../../gateway/core/point.js';
import type { PointValue } from '../../gateway/core/reading.js';
import type { GpioBackend } from './backend.js';
import { LoopDetector } from './loop-detector.js';
import { ParkingCounterDevice } from './parking-counter.js';
import type { SimulatedTrafficOptions } from './simulated-backend.js';
import { WeatherMeterDevice } from './weather-meter.js';

/** What the gpio bus serves: a lane's loop detector, a weather meter kit's reed switches, a car park's entry/exit detectors. */
type GpioDevice = LoopDetector | WeatherMeterDevice | ParkingCounterDevice;

export interface GpioBusOptions {
  id: string;
  /** sysfs: the board's pins through onoff; simulated: vehicles on simulated loops (demo, tests) */
  backend: 'sysfs' | 'simulated';
  /** sysfs: the header chip by label, sysfs name or base (default: found by label) */
  chip?: string | number;
  simulate?: SimulatedTrafficOptions;
  /** a backend made by the caller (tests with a manual clock) */
  backendInstance?: GpioBackend;
  /** wall clock for the weather meter's hour and day (tests); default Date.now */
  wallNow?: () => number;
}

/**
 * The `gpio` bus: the board's own input pins. It serves `loop-detector` devices (profiles whose
 * pins include `presence`) and weather meter kits (profiles with `rain`/`wind` pins). Inputs are armed when the gateway attaches its devices (or at the first
 * read), so the first interval starts then; each read closes the interval since the previous one.
 */
export class GpioBus implements BusDriver {
  readonly type = 'gpio';
  private backend: GpioBackend | null = null;
  private readonly detectors = new Map<string, GpioDevice>();
  private readonly health_ = new Map<string, DeviceHealth>();
  private lastError: string | undefined;
  private reads = 0;

  constructor(private readonly opts: GpioBusOptions) {}

  get id(): string {
    return this.opts.id;
  }

  async open(): Promise<void> {
    if (this.backend) return;
    try {
      if (this.opts.backendInstance) this.backend = this.opts.backendInstance;
      else if (this.opts.backend === 'simulated') {
        const { SimulatedGpioBackend } = await import('./simulated-backend.js');
        this.backend = new SimulatedGpioBackend(this.opts.simulate);
      } else {
        const { SysfsGpioBackend } = await import('./sysfs-backend.js');
        this.backend = await SysfsGpioBackend.create(this.opts.chip !== undefined ? { chip: this.opts.chip } : {});
      }
      this.lastError = undefined;
    } catch (err) {
      this.lastError = describeError(err);
      throw err instanceof LangbiangError
        ? err
        : new LangbiangError('GPIO_UNAVAILABLE', `bus ${this.id}: ${this.lastError}`, undefined, { cause: err });
    }
  }

  async attach(devices: readonly DeviceBinding[]): Promise<void> {
    if (!this.backend) return; // armed at their first read once the bus is open
    for (const d of devices) {
      try {
        await this.detector(d);
      } catch {
        // reported on every read of the device (quality + health) until it works
      }
    }
  }

  private async detector(device: DeviceBinding): Promise<GpioDevice> {
    const existing = this.detectors.get(device.id);
    if (existing) return existing;
    if (!this.backend) throw new LangbiangError('BUS_CLOSED', `gpio bus ${this.id} is not open`);
    const pins = [...(device.profile.pins ?? []), ...(device.profile.optionalPins ?? [])];
    let det: GpioDevice;
    if (pins.includes('presence')) det = await LoopDetector.arm(device, this.backend);
    else if (pins.includes('rain') || pins.includes('wind'))
      det = await WeatherMeterDevice.arm(device, this.backend, this.opts.wallNow);
    else if (pins.includes('entry') && pins.includes('exit'))
      det = await ParkingCounterDevice.arm(device, this.backend, this.opts.wallNow);
    else
      throw new LangbiangError(
        'CONFIG_INVALID',
        `profile ${device.profile.name} is not a loop detector (presence pin), a weather meter (rain/wind pins) or a car park (entry/exit pins)`,
      );
    this.detectors.set(device.id, det);
    return det;
  }

  async readPoints(device: DeviceBinding, points: readonly PointDef[]): Promise<PointValue[]> {
    const h = this.deviceHealth(device.id);
    h.polls++;
    this.reads++;
    if (!this.backend) {
      try {
        await this.open();
      } catch (err) {
        return this.fail(h, points, 'bus_error', describeError(err));
      }
    }
    let det: GpioDevice;
    try {
      det = await this.detector(device);
    } catch (err) {
      return this.fail(
        h,
        points,
        err instanceof LangbiangError && err.code === 'CONFIG_INVALID' ? 'decode_error' : 'bus_error',
        describeError(err),
      );
    }
    h.state = 'ok';
    h.consecutiveFailures = 0;
    h.lastOkAt = Date.now();
    return det.read(points);
  }

  private fail(
    h: DeviceHealth,
    points: readonly PointDef[],
    quality: 'bus_error' | 'decode_error',
    error: string,
  ): PointValue[] {
    h.errors++;
    h.consecutiveFailures++;
    h.state = 'degraded';
    h.lastError = error;
    return points.map((p) => ({ point: p.name, value: null, quality, error }));
  }

  async writePoint(device: DeviceBinding, point: PointDef, value: number | boolean): Promise<void> {
    // a car park's occupancy is a count the gateway keeps: an attendant's count may correct it
    const det =
      this.detectors.get(device.id) ?? (this.backend ? await this.detector(device).catch(() => undefined) : undefined);
    if (det instanceof ParkingCounterDevice) {
      det.write(point, value);
      return;
    }
    throw new LangbiangError(
      'NOT_WRITABLE',
      `${device.id}.${point.name} is an input: loop detectors and weather meters cannot be written`,
    );
  }

  private deviceHealth(id: string): DeviceHealth {
    let h = this.health_.get(id);
    if (!h) {
      h = { device: id, state: 'ok', consecutiveFailures: 0, polls: 0, errors: 0 };
      this.health_.set(id, h);
    }
    return h;
  }

  health(): BusHealth {
    return {
      bus: this.id,
      type: this.type,
      open: this.backend !== null,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      reconnects: 0,
      queueDepth: 0,
      transactions: this.reads,
      devices: [...this.health_.values()].map((d) => ({ ...d })),
    };
  }

  async close(): Promise<void> {
    const dets = [...this.detectors.values()];
    this.detectors.clear();
    await Promise.allSettled(dets.map((d) => d.close()));
    await this.backend?.close();
    this.backend = null;
  }
}
