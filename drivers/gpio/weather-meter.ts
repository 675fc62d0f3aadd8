import type { DeviceBinding } from '../../gateway/core/driver.js';
import { LangbiangError } from '../../gateway/core/errors.js';
import type { PointDef } from '../../gateway/core/point.js';
import type { PointValue } from '../../gateway/core/reading.js';
import { ArmedInputs, type InputWiring } from './armed-inputs.js';
import type { GpioBackend } from './backend.js';
import { PulseInput } from './pulse-input.js';

/**
 * A weather meter kit's reed-switch sensors on GPIO inputs (SparkFun SEN-15901 and its clones): a
 * tipping-bucket rain gauge (one closure per 0.2794 mm of rain) and a cup anemometer (one closure
 * per second = 2.4 km/h). Each closure is a pulse; contact bounce is removed by the loop detectors'
 * BounceFilter, so a bouncing reed switch counts once and two real closures never merge.
 */
export { PulseInput } from './pulse-input.js';
export const MM_PER_TIP = 0.2794;
export const KMH_PER_HZ = 2.4;
/** WMO: a gust is the highest 3-second mean wind speed. */
export const GUST_WINDOW_MS = 3000;
/** Reed switches settle within a millisecond or two; at 150 km/h the anemometer closes every 16 ms. */
export const DEFAULT_REED_MIN_MS = 2;
const HOUR = 3_600_000;

export interface WeatherMeterSettings {
  rain?: number;
  wind?: number;
  minPulseMs: number;
  activeLow: boolean;
  /** IANA time zone whose midnight starts "today" (the gateway's) */
  timezone: string;
  mmPerTip: number;
  kmhPerHz: number;
}

export function weatherMeterSettings(device: DeviceBinding): WeatherMeterSettings {
  const pins = device.pins ?? {};
  const opts = device.options ?? {};
  const where = `device ${device.id}`;
  if (pins.rain === undefined && pins.wind === undefined) {
    throw new LangbiangError('CONFIG_INVALID', `${where}: pins.rain or pins.wind is required`);
  }
  const positive = (key: string, fallback: number): number => {
    const v = opts[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new LangbiangError(
        'CONFIG_INVALID',
        `${where}: options.${key} must be a positive number, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  };
  const timezone = typeof opts.timezone === 'string' ? opts.timezone : 'UTC';
  try {
    new Intl.DateTimeFormat('en-CA', { timeZone: timezone });
  } catch {
    throw new LangbiangError('CONFIG_INVALID', `${where}: options.timezone "${timezone}" is not a time zone`);
  }
  return {
    ...(pins.rain !== undefined ? { rain: pins.rain } : {}),
    ...(pins.wind !== undefined ? { wind: pins.wind } : {}),
    minPulseMs: positive('minPulseMs', DEFAULT_REED_MIN_MS),
    activeLow: opts.activeLow !== false, // reed switch to ground with a pull-up: closed reads low
    timezone,
    mmPerTip: positive('mmPerTip', MM_PER_TIP),
    kmhPerHz: positive('kmhPerHz', KMH_PER_HZ),
  };
}

export interface WeatherFigures {
  /** rain in the interval since the previous read, mm */
  precipitation: number | null;
  /** that rain as an hourly rate, mm/h */
  rainRate: number | null;
  rainLastHour: number | null;
  /** since local midnight in the gateway's time zone, mm */
  rainToday: number | null;
  /** mean over the interval, km/h */
  windSpeed: number | null;
  /** highest 3-second mean within the interval, km/h */
  windGust: number | null;
}

/** Local calendar day of a wall time in a time zone, e.g. 2026-12-06. */
function dayIn(formatter: Intl.DateTimeFormat, wallMs: number): string {
  return formatter.format(new Date(wallMs));
}

/**
 * The figures of one read, from the pulses since the previous one. Pulse times are on the GPIO
 * backend's monotonic clock; `wallNow` maps them to wall time for the hour and the day.
 */
export class WeatherMeter {
  readonly rain: PulseInput | undefined;
  readonly wind: PulseInput | undefined;
  private readonly day: Intl.DateTimeFormat;
  /** wall times of the tips within the last hour */
  private tipsLastHour: number[] = [];
  private today = { day: '', tips: 0 };
  private lastRead: number;

  constructor(
    private readonly s: WeatherMeterSettings,
    start: number,
  ) {
    this.rain = s.rain !== undefined ? new PulseInput(s.minPulseMs, start) : undefined;
    this.wind = s.wind !== undefined ? new PulseInput(s.minPulseMs, start) : undefined;
    this.day = new Intl.DateTimeFormat('en-CA', {
      timeZone: s.timezone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    });
    this.lastRead = start;
  }

  /** Closes the interval since the previous read at `now` (backend clock), `wallNow` being the same instant on the wall. */
  take(now: number, wallNow: number): WeatherFigures {
    const intervalMs = Math.max(1, now - this.lastRead);
    this.lastRead = now;
    const toWall = (t: number) => wallNow - (now - t);
    const out: WeatherFigures = {
      precipitation: null,
      rainRate: null,
      rainLastHour: null,
      rainToday: null,
      windSpeed: null,
      windGust: null,
    };

    if (this.rain) {
      const tips = this.rain.take(now).map(toWall);
      for (const w of tips) {
        const d = dayIn(this.day, w);
        if (d !== this.today.day) this.today = { day: d, tips: 0 };
        this.today.tips++;
      }
      // no tip since midnight: "today" starts at zero, whatever yesterday was
      const d = dayIn(this.day, wallNow);
      if (d !== this.today.day) this.today = { day: d, tips: 0 };
      this.tipsLastHour = [...this.tipsLastHour, ...tips].filter((w) => w > wallNow - HOUR);
      const mm = (n: number) => round(n * this.s.mmPerTip, 4);
      out.precipitation = mm(tips.length);
      out.rainRate = round((tips.length * this.s.mmPerTip * HOUR) / intervalMs, 3);
      out.rainLastHour = mm(this.tipsLastHour.length);
      out.rainToday = mm(this.today.tips);
    }

    if (this.wind) {
      const pulses = this.wind.take(now);
      out.windSpeed = round(((pulses.length * 1000) / intervalMs) * this.s.kmhPerHz, 3);
      let most = 0;
      for (let i = 0, j = 0; i < pulses.length; i++) {
        while ((pulses[i] as number) - (pulses[j] as number) >= GUST_WINDOW_MS) j++;
        most = Math.max(most, i - j + 1);
      }
      // a mean over 3 s needs 3 s: a shorter interval reports its own mean
      const window = Math.min(GUST_WINDOW_MS, intervalMs);
      out.windGust = round(Math.max(((most * 1000) / window) * this.s.kmhPerHz, out.windSpeed), 3);
    }
    return out;
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

const POINTS: Record<string, keyof WeatherFigures> = {
  precipitation: 'precipitation',
  rain_rate: 'rainRate',
  rain_last_hour: 'rainLastHour',
  rain_today: 'rainToday',
  wind_speed: 'windSpeed',
  wind_gust: 'windGust',
};

/** One weather meter kit on a GPIO backend: armed inputs feeding a WeatherMeter. */
export class WeatherMeterDevice {
  private inputs: ArmedInputs | null = null;

  private constructor(
    readonly meter: WeatherMeter,
    private readonly backend: GpioBackend,
    private readonly wallNow: () => number,
  ) {}

  static async arm(
    device: DeviceBinding,
    backend: GpioBackend,
    wallNow: () => number = Date.now,
  ): Promise<WeatherMeterDevice> {
    const s = weatherMeterSettings(device);
    const dev = new WeatherMeterDevice(new WeatherMeter(s, backend.now()), backend, wallNow);
    const wiring: InputWiring[] = [];
    for (const [pin, input] of [
      [s.rain, dev.meter.rain],
      [s.wind, dev.meter.wind],
    ] as const) {
      if (pin !== undefined && input) wiring.push({ pin, onEdge: (level, t) => input.edge(level, t) });
    }
    dev.inputs = await ArmedInputs.arm(backend, wiring, s.activeLow);
    return dev;
  }

  read(points: readonly PointDef[]): PointValue[] {
    this.backend.sync?.();
    const f = this.meter.take(this.backend.now(), this.wallNow());
    return points.map((p): PointValue => {
      const key = POINTS[p.name];
      if (!key) {
        return {
          point: p.name,
          value: null,
          quality: 'decode_error',
          error: `the weather-meter driver has no point "${p.name}"`,
        };
      }
      const value = f[key];
      if (value === null)
        return {
          point: p.name,
          value: null,
          quality: 'decode_error',
          error: `no ${key.startsWith('wind') ? 'wind' : 'rain'} pin configured`,
        };
      return { point: p.name, value, quality: p.max !== undefined && value > p.max ? 'out_of_range' : 'good' };
    });
  }

  async close(): Promise<void> {
    await this.inputs?.close();
  }
}
