import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ReceivedReading, ReceiverStore } from '../receiver/store.js';
import { dayBounds, dayOf } from './days.js';
import { type Aggregate, globMatch, type OpenDataConfig, type OpenDataset } from './open-data-config.js';

/**
 * Open data from a receiver database: per dataset and UTC day, `DIR/<dataset>/<day>.csv` and
 * `.json`, aggregates only (open-data-config.ts says which). Only readings of quality `good` with a
 * number count; a period without one has no row.
 */

/** What the city's copies of the gateway configs say: gateway → device → profile, and where it stands. */
export type GatewaySites = ReadonlyMap<
  string,
  { location: { lat: number; lon: number }; profiles: ReadonlyMap<string, string> }
>;

export type OpenDataRow = Record<string, string | number>;

export interface BuiltDay {
  day: string;
  datasets: { id: string; rows: number }[];
}

/** The columns of a dataset's rows, in order: the only ones it ever has. */
export function datasetFields(d: OpenDataset): string[] {
  return ['period', ...d.groupBy, 'point', ...d.aggregates];
}

/** Whether a reading belongs to a dataset (its point, and its device, profile or gateway). */
export function selects(
  d: OpenDataset,
  r: Pick<ReceivedReading, 'gateway' | 'device' | 'point'>,
  sites?: GatewaySites,
): boolean {
  if (!d.points.includes(r.point)) return false;
  if (d.gateways && !d.gateways.some((g) => globMatch(g, r.gateway))) return false;
  if (d.devices && !d.devices.some((g) => globMatch(g, r.device))) return false;
  if (d.profiles) {
    const profile = sites?.get(r.gateway)?.profiles.get(r.device);
    if (!profile || !d.profiles.includes(profile)) return false;
  }
  return true;
}

interface Acc {
  period: number;
  group: string[];
  point: string;
  sum: number;
  min: number;
  max: number;
  count: number;
}

function periodStart(ts: number, interval: 'hour' | 'day'): number {
  const step = interval === 'hour' ? 3_600_000 : 86_400_000;
  return Math.floor(ts / step) * step;
}

/** Aggregates one day of readings for every dataset; rows sorted by period, group, point. */
export async function aggregateDay(
  store: ReceiverStore,
  cfg: OpenDataConfig,
  day: string,
  sites?: GatewaySites,
): Promise<Map<string, OpenDataRow[]>> {
  const accs = cfg.datasets.map(() => new Map<string, Acc>());
  const { from, to } = dayBounds(day);
  for await (const page of store.readings({ from, to })) {
    for (const r of page) {
      if (r.quality !== 'good' || typeof r.value !== 'number' || !Number.isFinite(r.value)) continue;
      cfg.datasets.forEach((d, i) => {
        if (!selects(d, r, sites)) return;
        const period = periodStart(r.ts, d.interval);
        const group = d.groupBy.map((g) => (g === 'gateway' ? r.gateway : r.device));
        const key = JSON.stringify([period, group, r.point]);
        const a = accs[i]!.get(key);
        const v = r.value as number;
        if (!a) accs[i]!.set(key, { period, group, point: r.point, sum: v, min: v, max: v, count: 1 });
        else {
          a.sum += v;
          a.count++;
          if (v < a.min) a.min = v;
          if (v > a.max) a.max = v;
        }
      });
    }
  }
  const out = new Map<string, OpenDataRow[]>();
  cfg.datasets.forEach((d, i) => {
    const rows = [...accs[i]!.values()]
      .sort((x, y) => x.period - y.period || cmp(x.group.join('\0'), y.group.join('\0')) || cmp(x.point, y.point))
      .map((a) => {
        // built field by field, in the documented order, from the config's names only
        const row: OpenDataRow = { period: new Date(a.period).toISOString() };
        d.groupBy.forEach((g, j) => {
          row[g] = a.group[j]!;
        });
        row.point = a.point;
        for (const agg of d.aggregates) row[agg] = value(a, agg);
        return row;
      });
    out.set(d.id, rows);
  });
  return out;
}

function value(a: Acc, agg: Aggregate): number {
  switch (agg) {
    case 'mean':
      return a.sum / a.count;
    case 'min':
      return a.min;
    case 'max':
      return a.max;
    case 'sum':
      return a.sum;
    case 'count':
      return a.count;
    case 'delta':
      return a.max - a.min;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Writes one day's files of every dataset (each written aside and renamed into place). */
export async function buildDay(
  store: ReceiverStore,
  cfg: OpenDataConfig,
  outDir: string,
  day: string,
  sites?: GatewaySites,
): Promise<BuiltDay> {
  const all = await aggregateDay(store, cfg, day, sites);
  const built: BuiltDay = { day, datasets: [] };
  for (const d of cfg.datasets) {
    const rows = all.get(d.id) ?? [];
    const dir = join(outDir, d.id);
    mkdirSync(dir, { recursive: true });
    const fields = datasetFields(d);
    writeAtomic(join(dir, `${day}.csv`), toCsv(fields, rows));
    const doc = {
      dataset: d.id,
      date: day,
      interval: d.interval,
      ...(d.unit ? { unit: d.unit } : {}),
      license: cfg.license,
      fields,
      rows,
    };
    writeAtomic(join(dir, `${day}.json`), `${JSON.stringify(doc, null, 1)}\n`);
    built.datasets.push({ id: d.id, rows: rows.length });
  }
  return built;
}

export function toCsv(fields: string[], rows: OpenDataRow[]): string {
  const q = (v: string | number) => {
    const s = String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return `${[fields.join(','), ...rows.map((r) => fields.map((f) => q(r[f] ?? '')).join(','))].join('\n')}\n`;
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** Days before today (UTC) with readings for which some dataset has no file yet. */
export async function closedDaysToBuild(store: ReceiverStore, cfg: OpenDataConfig, outDir: string, now = Date.now()) {
  const span = await store.readingSpan();
  if (!span) return [];
  const today = dayOf(now);
  const days: string[] = [];
  for (let t = dayBounds(dayOf(span.first)).from; dayOf(t) < today && t <= span.last; t += 86_400_000) {
    const d = dayOf(t);
    if (cfg.datasets.some((ds) => !existsSync(join(outDir, ds.id, `${d}.csv`)))) days.push(d);
  }
  return days;
}

/** The days a dataset has files for, oldest first. */
export function builtDays(outDir: string, datasetId: string): string[] {
  const dir = join(outDir, datasetId);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^\d{4}-\d{2}-\d{2}\.csv$/.test(f) && existsSync(join(dir, f.replace(/\.csv$/, '.json'))))
    .map((f) => f.slice(0, 10))
    .sort();
}
