import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { describeError, LangbiangError } from '../../gateway/core/errors.js';

/**
 * open-data.yaml: what the city publishes. Each dataset names the points it takes (of which
 * devices, profiles or gateways), the interval it aggregates over, the aggregates it gives and
 * the grouping columns it keeps. Nothing else leaves: a dataset's rows have exactly the columns
 * `period`, the `groupBy` columns, `point` and the `aggregates` — never a value, device or
 * gateway the config did not name.
 */

/** `delta` is max − min: the consumption over the period of a cumulative counter (an energy meter). */
export const AGGREGATES = ['mean', 'min', 'max', 'sum', 'count', 'delta'] as const;
export type Aggregate = (typeof AGGREGATES)[number];

/** EU data themes (publications office authority list) a dataset may name. */
export const DATA_THEMES = [
  'AGRI',
  'ECON',
  'EDUC',
  'ENER',
  'ENVI',
  'GOVE',
  'HEAL',
  'INTR',
  'JUST',
  'REGI',
  'SOCI',
  'TECH',
  'TRAN',
] as const;

/** EU frequency authority list: the values a catalog may give as update frequency. */
export const FREQUENCIES = { hourly: 'HOURLY', daily: 'DAILY', weekly: 'WEEKLY', monthly: 'MONTHLY' } as const;

const idPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;
const glob = z.string().min(1).max(200);

const datasetSchema = z
  .object({
    id: z.string().regex(idPattern, 'lower-case letters, digits and dashes (it names a directory and a URL)'),
    title: z.string().min(1),
    description: z.string().min(1),
    keywords: z.array(z.string().min(1)).default([]),
    theme: z.enum(DATA_THEMES).optional(),
    /** which points, by name (exact) */
    points: z.array(z.string().min(1)).min(1),
    /** device ids (globs with *) */
    devices: z.array(glob).optional(),
    /** device profiles (needs the gateway configs) */
    profiles: z.array(z.string().min(1)).optional(),
    /** gateway ids (globs with *) */
    gateways: z.array(glob).optional(),
    interval: z.enum(['hour', 'day']),
    aggregates: z.array(z.enum(AGGREGATES)).min(1),
    groupBy: z.array(z.enum(['gateway', 'device'])).default([]),
    /** the unit the values are in, for the catalog and the JSON (the config states it: the data does not decide) */
    unit: z.string().optional(),
  })
  .strict()
  .refine((d) => d.devices || d.profiles || d.gateways, {
    message: 'name the devices, profiles or gateways the dataset takes its points from',
  })
  .refine((d) => !d.groupBy.includes('device') || d.groupBy.includes('gateway'), {
    path: ['groupBy'],
    message: 'a device id is unique only within its gateway: group by gateway too',
  })
  .refine((d) => !d.aggregates.includes('delta') || d.groupBy.includes('device'), {
    path: ['aggregates'],
    message: "delta (a counter's increase) is per device: add device to groupBy",
  });

export const openDataConfigSchema = z
  .object({
    catalog: z
      .object({
        title: z.string().min(1),
        description: z.string().min(1),
        /** where the output directory is published: the catalog's IRIs and download URLs start with it */
        baseUrl: z.string().url(),
        language: z
          .string()
          .regex(/^[a-z]{2,3}$/, 'an ISO 639 code such as vi or en')
          .default('vi'),
        homepage: z.string().url().optional(),
      })
      .strict(),
    publisher: z
      .object({
        name: z.string().min(1),
        url: z.string().url().optional(),
        email: z.string().email().optional(),
      })
      .strict(),
    /** CC BY 4.0 unless said otherwise */
    license: z.string().url().default('https://creativecommons.org/licenses/by/4.0/'),
    updateFrequency: z.enum(Object.keys(FREQUENCIES) as [keyof typeof FREQUENCIES]).default('daily'),
    /** spatial coverage: [west, south, east, north] in degrees (WGS 84) */
    bbox: z
      .tuple([
        z.number().min(-180).max(180),
        z.number().min(-90).max(90),
        z.number().min(-180).max(180),
        z.number().min(-90).max(90),
      ])
      .optional(),
    datasets: z.array(datasetSchema).min(1),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.datasets.forEach((d, i) => {
      if (seen.has(d.id))
        ctx.addIssue({ code: 'custom', path: ['datasets', i, 'id'], message: `${d.id} is used twice` });
      seen.add(d.id);
    });
  });

export type OpenDataConfig = z.infer<typeof openDataConfigSchema>;
export type OpenDataset = OpenDataConfig['datasets'][number];

/** Reads and checks the YAML; errors name the key path. */
export function loadOpenDataConfig(file: string): OpenDataConfig {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new LangbiangError('CONFIG_UNREADABLE', `${file}: ${describeError(err)}`);
  }
  const r = openDataConfigSchema.safeParse(doc);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(top)'}: ${i.message}`);
    throw new LangbiangError('CONFIG_INVALID', `${file}:\n  ${lines.join('\n  ')}`);
  }
  return r.data;
}

/** `*` matches any run of characters; everything else is literal. */
export function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map(escapeRe).join('.*')}$`);
  return re.test(s);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
