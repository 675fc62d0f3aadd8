import type { DeviceProfile, PointDef } from '../../gateway/core/point.js';

/**
 * Plausible, slowly changing values for a simulated device, chosen by point name. They follow
 * what the field sees in Đà Lạt: air 14-26 °C over the day (coldest before dawn, warmest mid
 * afternoon), humidity moving against temperature, soil drying and jumping back up after an
 * irrigation, mains at ~230 V / 50 Hz, energy counters that only ever go up.
 */
export type ValueModel = (wallMs: number) => number | string;

const HOUR = 3_600_000;
const DALAT_UTC_OFFSET_H = 7;

/** Small deterministic wobble so two units don't show identical numbers. */
function wobble(seed: number, wallMs: number, periodMs: number, amplitude: number): number {
  return amplitude * Math.sin((2 * Math.PI * wallMs) / periodMs + seed * 1.7);
}

function localHour(wallMs: number): number {
  return (((wallMs / HOUR + DALAT_UTC_OFFSET_H) % 24) + 24) % 24;
}

/** Air temperature: 14 °C at 03:00, 26 °C at 15:00. */
export function dalatAirTemperature(wallMs: number): number {
  return 20 - 6 * Math.cos((2 * Math.PI * (localHour(wallMs) - 3)) / 24);
}

/** Relative humidity moves against temperature: ~95 % at dawn, ~65 % mid afternoon. */
export function humidityFor(temperature: number): number {
  return 95 - (temperature - 14) * 2.5;
}

/** Soil dries 20 points over an irrigation cycle, then jumps back when the valve opens. */
export function soilMoisture(wallMs: number, seed: number, cycleMs = 10 * 60_000): number {
  const phase = (((wallMs + seed * 97_000) % cycleMs) + cycleMs) % cycleMs;
  return 45 - (20 * phase) / cycleMs;
}

function clamp(point: PointDef, v: number): number {
  let x = v;
  if (point.min !== undefined && x < point.min) x = point.min;
  if (point.max !== undefined && x > point.max) x = point.max;
  return x;
}

function phaseOf(name: string): number {
  const m = /_l([123])$/.exec(name);
  return m ? Number(m[1]) : 0;
}

/** Initial value of a point nothing models: writable levels on, relays off, else mid-range or 0. */
export function restingValue(point: PointDef): number | string {
  if (point.type === 'string') return 'SIM';
  if (point.writable && /brightness|level/.test(point.name)) return clamp(point, 254);
  if (point.type === 'bit' || point.function === 'coil' || point.function === 'discrete') return 0;
  // a healthy device: failure and fault words read 0 until a test sets them
  if (/fail|fault|alarm|error/.test(point.name)) return 0;
  if (point.min !== undefined && point.max !== undefined) {
    const mid = (point.min + point.max) / 2;
    return point.scale === 1 && point.offset === 0 ? Math.round(mid) : mid;
  }
  return clamp(point, 0);
}

/**
 * The model for one point, or undefined when the point just holds what was last written
 * (writable points, status words, anything without an obvious physical meaning).
 */
export function modelFor(
  profile: DeviceProfile,
  point: PointDef,
  seed: number,
  startMs: number,
): ValueModel | undefined {
  if (point.writable || point.type === 'bit' || point.type === 'string') return undefined;
  const name = point.name;
  const soil = /soil/.test(profile.name) || profile.points.some((p) => p.name === 'moisture');
  const threePhase = profile.points.some((p) => p.name === 'voltage_l1');
  const phases = threePhase ? 3 : 1;
  const voltage = (t: number, ph: number) => 230 + wobble(seed + ph, t, 7 * 60_000, 2.5);
  const current = (t: number, ph: number) => 3 + wobble(seed + ph * 2, t, 20 * 60_000, 2) + (ph ? ph * 0.3 : 0);
  const pf = (t: number) => 0.93 + wobble(seed, t, 13 * 60_000, 0.03);
  const phaseList = (ph: number) => (ph ? [ph] : Array.from({ length: phases }, (_, i) => (threePhase ? i + 1 : 0)));
  const sum = (ph: number, f: (p: number) => number) => phaseList(ph).reduce((acc, p) => acc + f(p), 0);
  // average power of the whole meter, what the energy counters integrate
  const avgPowerW = 230 * 3 * 0.93 * phases;
  const importKwh = (t: number) => 1234.5 + seed * 10 + (avgPowerW * Math.max(0, t - startMs)) / HOUR / 1000;

  const m =
    (f: ValueModel): ValueModel =>
    (t) => {
      const v = f(t);
      return typeof v === 'number' ? clamp(point, v) : v;
    };

  if (name === 'moisture') return m((t) => soilMoisture(t, seed));
  if (name === 'temperature' || name.endsWith('_temperature')) {
    return m((t) => {
      const air = dalatAirTemperature(t);
      // soil lags and damps the air curve
      return soil ? 19 + (air - 20) * 0.4 + wobble(seed, t, 11 * 60_000, 0.1) : air + wobble(seed, t, 5 * 60_000, 0.2);
    });
  }
  if (name === 'humidity') return m((t) => humidityFor(dalatAirTemperature(t)) + wobble(seed, t, 6 * 60_000, 0.5));
  if (name === 'ec') return m((t) => 600 + 15 * soilMoisture(t, seed) + wobble(seed, t, 9 * 60_000, 10));
  if (name === 'ph') return m((t) => 6.4 + wobble(seed, t, 30 * 60_000, 0.1));
  if (name === 'nitrogen') return m((t) => 45 + wobble(seed, t, 40 * 60_000, 2));
  if (name === 'phosphorus') return m((t) => 22 + wobble(seed, t, 40 * 60_000, 1));
  if (name === 'potassium') return m((t) => 80 + wobble(seed, t, 40 * 60_000, 3));

  // a street drain: a few centimetres of water, and a cloudburst every quarter of an hour (the
  // demo's flood alarm): 3 minutes rising to about 42 cm, a minute up there, 3 minutes receding
  if (name === 'water_level') return m((t) => cloudburst(t, seed) + wobble(seed, t, 20 * 60_000, 1.5));
  if (name === 'decimal_places') return m(() => 1);
  if (name === 'range_zero') return m(() => 0);
  if (name === 'range_full') return m(() => 500);

  // Đà Lạt air: clean mountain air most of the day, a little more dust at the morning traffic
  if (name === 'pm25') return m((t) => 14 + wobble(seed, t, 45 * 60_000, 4));
  if (name === 'pm10') return m((t) => 24 + wobble(seed + 1, t, 45 * 60_000, 6));
  if (name === 'pm1') return m((t) => 9 + wobble(seed + 2, t, 45 * 60_000, 3));
  // a light north-easterly breeze (the dry-season monsoon); the sector follows the degrees
  const windFrom = (t: number) => (((45 + wobble(seed, t, 7 * 60_000, 30)) % 360) + 360) % 360;
  if (name === 'wind_speed') return m((t) => 2.5 + wobble(seed, t, 3 * 60_000, 1.5));
  if (name === 'wind_direction') return m((t) => Math.round(windFrom(t)));
  if (name === 'wind_sector') return m((t) => Math.round(windFrom(t) / 45) % 8);

  const ph = phaseOf(name);
  if (name.startsWith('voltage')) return m((t) => voltage(t, ph));
  if (name.startsWith('current')) return m((t) => sum(ph, (p) => current(t, p)));
  if (name.startsWith('active_power')) return m((t) => sum(ph, (p) => voltage(t, p) * current(t, p) * pf(t)));
  if (name.startsWith('apparent_power')) return m((t) => sum(ph, (p) => voltage(t, p) * current(t, p)));
  if (name.startsWith('reactive_power')) {
    return m((t) => sum(ph, (p) => voltage(t, p) * current(t, p) * Math.sqrt(1 - pf(t) ** 2)));
  }
  if (name.startsWith('power_factor')) return m((t) => pf(t));
  if (name === 'frequency') return m((t) => 50 + wobble(seed, t, 3 * 60_000, 0.05));
  if (name === 'export_energy') return m(() => 12.5 + seed);
  if (name === 'import_energy') return m((t) => importKwh(t));
  if (name === 'total_energy' || name.endsWith('_energy')) return m((t) => importKwh(t) + 12.5 + seed);
  return undefined;
}

/** Water in a street drain over a 15-minute cycle: dry for 8 minutes, then a cloudburst's flood. */
export function cloudburst(wallMs: number, seed: number): number {
  const minute = (((wallMs / 60_000 + seed * 3) % 15) + 15) % 15;
  const dry = 8;
  const flood = 42;
  if (minute < 8) return dry;
  if (minute < 11) return dry + ((flood - dry) * (minute - 8)) / 3;
  if (minute < 12) return flood;
  return flood - ((flood - dry) * (minute - 12)) / 3;
}
