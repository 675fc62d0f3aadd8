import type { DeviceBinding } from '../../gateway/core/driver.js';
import { LangbiangError } from '../../gateway/core/errors.js';
import type { PointDef } from '../../gateway/core/point.js';
import type { PointValue } from '../../gateway/core/reading.js';
import { ArmedInputs } from './armed-inputs.js';
import type { GpioBackend } from './backend.js';
import { PulseInput } from './pulse-input.js';

/** Loops and light barriers: a car takes hundreds of ms to pass, contact bounce a few. */
export const DEFAULT_BARRIER_MIN_MS = 20;

export interface ParkingSettings {
  entry: number;
  exit: number;
  capacity: number;
  minPulseMs: number;
  activeLow: boolean;
  timezone: string;
  /** local time of the daily recalibration, minutes after midnight (undefined: none) */
  recalibrateAtMin?: number;
  /** occupancy set at the recalibration (a car park empty at night: 0) */
  recalibrateTo: number;
  /** the last stored count before a restart, given by the gateway (not a config option) */
  restore?: { value: number; at: number };
}

export function parkingSettings(device: DeviceBinding): ParkingSettings {
  const pins = device.pins ?? {};
  const o = device.options ?? {};
  const where = `device ${device.id}`;
  if (pins.entry === undefined || pins.exit === undefined) {
    throw new LangbiangError('CONFIG_INVALID', `${where}: pins.entry and pins.exit are required`);
  }
  const capacity = o.capacity;
  if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 1) {
    throw new LangbiangError('CONFIG_INVALID', `${where}: options.capacity (spaces) must be a positive integer`);
  }
  let recalibrateAtMin: number | undefined;
  if (o.recalibrateAt !== undefined) {
    const m = typeof o.recalibrateAt === 'string' ? /^([01]?\d|2[0-3]):([0-5]\d)$/.exec(o.recalibrateAt) : null;
    if (!m) throw new LangbiangError('CONFIG_INVALID', `${where}: options.recalibrateAt must be a time like 03:00`);
    recalibrateAtMin = Number(m[1]) * 60 + Number(m[2]);
  }
  const to = o.recalibrateTo ?? 0;
  if (typeof to !== 'number' || !Number.isInteger(to) || to < 0 || to > capacity) {
    throw new LangbiangError('CONFIG_INVALID', `${where}: options.recalibrateTo must be 0..capacity`);
  }
  const restoreOccupancy = typeof o.restoreOccupancy === 'number' ? o.restoreOccupancy : undefined;
  const restoreAt = typeof o.restoreAt === 'number' ? o.restoreAt : undefined;
  const minPulseMs = o.minPulseMs ?? DEFAULT_BARRIER_MIN_MS;
  if (typeof minPulseMs !== 'number' || !(minPulseMs > 0)) {
    throw new LangbiangError('CONFIG_INVALID', `${where}: options.minPulseMs must be a positive number`);
  }
  return {
    entry: pins.entry,
    exit: pins.exit,
    capacity,
    minPulseMs,
    activeLow: o.activeLow === true,
    timezone: typeof o.timezone === 'string' ? o.timezone : 'UTC',
    ...(recalibrateAtMin !== undefined ? { recalibrateAtMin } : {}),
    recalibrateTo: to,
    ...(restoreOccupancy !== undefined && restoreAt !== undefined
      ? { restore: { value: restoreOccupancy, at: restoreAt } }
      : {}),
  };
}

interface LocalTime {
  day: string;
  minutes: number;
}

/**
 * Occupancy of one car park from its entry and exit detectors. Detectors miss cars (two close
 * together, a motorbike on a car loop), so the count drifts; it is kept within [0, capacity]
 * (an exit counted at 0 or an entry at capacity is a miss, counted in `corrections`), reset once a
 * day at a quiet hour, and can be set by a command (`occupancy` is writable).
 */
export class ParkingCount {
  readonly entry: PulseInput;
  readonly exit: PulseInput;
  private occupied: number;
  private lastRecalibrationDay: string | undefined;
  private readonly local: Intl.DateTimeFormat;
  corrections = 0;

  constructor(
    readonly s: ParkingSettings,
    start: number,
    wallStart: number,
  ) {
    this.entry = new PulseInput(s.minPulseMs, start);
    this.exit = new PulseInput(s.minPulseMs, start);
    this.occupied = 0;
    this.local = new Intl.DateTimeFormat('en-GB', {
      timeZone: s.timezone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    // started after today's recalibration hour: today's is not done again at the first read
    const t = this.localTime(wallStart);
    if (s.recalibrateAtMin !== undefined && t.minutes >= s.recalibrateAtMin) this.lastRecalibrationDay = t.day;
  }

  get occupancy(): number {
    return this.occupied;
  }

  /**
   * The count the gateway had stored before a restart (`value` counted at wall time `at`): taken
   * back unless a daily recalibration fell between then and now, which wins as it would have.
   */
  restore(value: number, at: number, now: number): void {
    if (!Number.isInteger(value) || value < 0 || value > this.s.capacity || !(at <= now)) return;
    const R = this.s.recalibrateAtMin;
    if (R !== undefined) {
      const then = this.localTime(at);
      const today = this.localTime(now);
      const days = Math.round((Date.parse(today.day) - Date.parse(then.day)) / 86_400_000);
      const missed =
        days === 0 ? then.minutes < R && today.minutes >= R : days > 1 || today.minutes >= R || then.minutes < R;
      if (missed) {
        this.occupied = this.s.recalibrateTo;
        return;
      }
    }
    this.occupied = value;
  }

  /** A `set occupancy` command (a count by the attendant). */
  set(value: number): void {
    if (!Number.isInteger(value) || value < 0 || value > this.s.capacity) {
      throw new LangbiangError('OUT_OF_RANGE', `occupancy must be an integer 0..${this.s.capacity}, got ${value}`);
    }
    this.occupied = value;
  }

  private localTime(wall: number): LocalTime {
    const parts = Object.fromEntries(this.local.formatToParts(new Date(wall)).map((p) => [p.type, p.value]));
    return {
      day: `${parts.year}-${parts.month}-${parts.day}`,
      minutes: Number(parts.hour) * 60 + Number(parts.minute),
    };
  }

  /** Closes an interval: counts the passages in time order, recalibrating where the hour falls. */
  take(now: number, wallNow: number): { entries: number; exits: number; occupancy: number; freeSpaces: number } {
    const toWall = (t: number) => wallNow - (now - t);
    const events = [
      ...this.entry.take(now).map((t) => ({ t: toWall(t), d: 1 })),
      ...this.exit.take(now).map((t) => ({ t: toWall(t), d: -1 })),
    ].sort((a, b) => a.t - b.t);
    let entries = 0;
    let exits = 0;
    for (const e of events) {
      this.recalibrateIfDue(e.t);
      if (e.d > 0) entries++;
      else exits++;
      const next = this.occupied + e.d;
      if (next < 0 || next > this.s.capacity) this.corrections++;
      else this.occupied = next;
    }
    this.recalibrateIfDue(wallNow);
    return { entries, exits, occupancy: this.occupied, freeSpaces: this.s.capacity - this.occupied };
  }

  private recalibrateIfDue(wall: number): void {
    if (this.s.recalibrateAtMin === undefined) return;
    const t = this.localTime(wall);
    if (t.minutes >= this.s.recalibrateAtMin && t.day !== this.lastRecalibrationDay) {
      this.lastRecalibrationDay = t.day;
      this.occupied = this.s.recalibrateTo;
    }
  }
}

/** One car park on a GPIO backend: entry and exit inputs feeding a ParkingCount. */
export class ParkingCounterDevice {
  private inputs: ArmedInputs | null = null;

  private constructor(
    readonly count: ParkingCount,
    private readonly backend: GpioBackend,
    private readonly wallNow: () => number,
  ) {}

  static async arm(
    device: DeviceBinding,
    backend: GpioBackend,
    wallNow: () => number = Date.now,
  ): Promise<ParkingCounterDevice> {
    const s = parkingSettings(device);
    const dev = new ParkingCounterDevice(new ParkingCount(s, backend.now(), wallNow()), backend, wallNow);
    if (s.restore) dev.count.restore(s.restore.value, s.restore.at, wallNow());
    dev.inputs = await ArmedInputs.arm(
      backend,
      [
        { pin: s.entry, onEdge: (level, t) => dev.count.entry.edge(level, t) },
        { pin: s.exit, onEdge: (level, t) => dev.count.exit.edge(level, t) },
      ],
      s.activeLow,
    );
    return dev;
  }

  read(points: readonly PointDef[]): PointValue[] {
    this.backend.sync?.();
    const f = this.count.take(this.backend.now(), this.wallNow());
    const values: Record<string, number> = {
      occupancy: f.occupancy,
      free_spaces: f.freeSpaces,
      entries: f.entries,
      exits: f.exits,
      capacity: this.count.s.capacity,
    };
    return points.map((p): PointValue => {
      const v = values[p.name];
      return v === undefined
        ? { point: p.name, value: null, quality: 'decode_error', error: `the parking driver has no point "${p.name}"` }
        : { point: p.name, value: v, quality: 'good' };
    });
  }

  write(point: PointDef, value: number | boolean): void {
    if (point.name !== 'occupancy') {
      throw new LangbiangError('NOT_WRITABLE', `${point.name} of a car park cannot be set; occupancy can`);
    }
    this.count.set(typeof value === 'boolean' ? Number(value) : value);
  }

  async close(): Promise<void> {
    await this.inputs?.close();
  }
}
