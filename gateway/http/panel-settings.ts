import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HttpError } from './respond.js';

export const PANEL_SETTINGS_FILE = 'panel-settings.json';

/** "Soil moisture of soil-a1 below 25 % is too dry": set by a technician, shown to the farmer. */
export interface Threshold {
  device: string;
  point: string;
  /** alert when the value is below this */
  below?: number;
  /** alert when the value is above this */
  above?: number;
}

const MAX_THRESHOLDS = 200;

/**
 * Alert thresholds live in the data directory, not the config: a technician tunes them from the
 * console without a restart, and they survive config changes.
 */
export class PanelSettings {
  private readonly file: string;
  private thresholds: Threshold[] = [];

  constructor(dataDir: string) {
    this.file = join(dataDir, PANEL_SETTINGS_FILE);
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as { thresholds?: unknown };
      this.thresholds = validateThresholds(parsed.thresholds ?? []);
    } catch {
      this.thresholds = [];
    }
  }

  list(): Threshold[] {
    return this.thresholds.map((t) => ({ ...t }));
  }

  replace(input: unknown): Threshold[] {
    this.thresholds = validateThresholds(input);
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ thresholds: this.thresholds }, null, 2)}\n`, { mode: 0o640 });
    chmodSync(tmp, 0o640);
    renameSync(tmp, this.file);
    return this.list();
  }
}

export function validateThresholds(input: unknown): Threshold[] {
  if (!Array.isArray(input)) throw new HttpError(400, 'thresholds must be a list');
  if (input.length > MAX_THRESHOLDS) throw new HttpError(400, `at most ${MAX_THRESHOLDS} thresholds`);
  return input.map((t, i) => {
    const at = `thresholds.${i}`;
    if (!t || typeof t !== 'object') throw new HttpError(400, `${at}: must be an object`, { path: at });
    const o = t as Record<string, unknown>;
    for (const k of ['device', 'point'] as const)
      if (typeof o[k] !== 'string' || !(o[k] as string).length || (o[k] as string).length > 64)
        throw new HttpError(400, `${at}.${k}: must be a device/point name`, { path: `${at}.${k}` });
    const out: Threshold = { device: o.device as string, point: o.point as string };
    for (const k of ['below', 'above'] as const) {
      if (o[k] === undefined || o[k] === null || o[k] === '') continue;
      const n = Number(o[k]);
      if (!Number.isFinite(n)) throw new HttpError(400, `${at}.${k}: must be a number`, { path: `${at}.${k}` });
      out[k] = n;
    }
    if (out.below === undefined && out.above === undefined)
      throw new HttpError(400, `${at}: set "below", "above" or both`, { path: at });
    return out;
  });
}
