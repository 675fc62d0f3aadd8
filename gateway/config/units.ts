import { parseDuration as parseAnyDuration } from '../core/duration.js';
import { LangbiangError } from '../core/errors.js';
import { quoteShort } from './problems.js';

/**
 * Human durations and sizes as technicians write them in YAML. Plain numbers mean milliseconds
 * and bytes, so a value copied from an API response or a log still parses. Durations follow the
 * gateway's one grammar (core/duration.ts); a bare number there counts in ms.
 */

export { DURATION_EXAMPLES, DURATION_PATTERN, formatDuration } from '../core/duration.js';

// Decimal units are SI (1 MB = 10^6 B); the "i" units are binary (1 MiB = 2^20 B), as on disk labels.
const SIZE_UNITS_BYTES: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

export const SIZE_EXAMPLES = '512MiB, 2GiB';

const NUMBER = String.raw`\d+(?:\.\d+)?`;
export const SIZE_PATTERN = String.raw`^\s*${NUMBER}\s*(?:[bB]|[kKmMgGtT][iI]?[bB])?\s*$`;

/**
 * No size is longer than this. Longer input is refused before any regex sees it, so
 * parsing stays linear in time whatever a config message carries.
 */
const MAX_UNIT_TEXT = 64;

function quote(s: unknown): string {
  return typeof s === 'string' ? quoteShort(s) : String(s);
}

function sizeError(input: unknown): LangbiangError {
  return new LangbiangError('CONFIG_INVALID', `${quote(input)} is not a size (use e.g. ${SIZE_EXAMPLES})`);
}

function plainNumber(input: number, err: () => LangbiangError): number {
  if (!Number.isFinite(input) || input < 0) throw err();
  return input;
}

/** `500ms`, `30s`, `5m`, `2h`, `90d`, `1w`, `1h30m`, or a number of ms. Returns whole ms. */
export function parseDuration(input: string | number): number {
  try {
    return parseAnyDuration(input, { bare: 'ms' });
  } catch (err) {
    // the config's callers report this with the key path, as every other config problem
    if (err instanceof LangbiangError) throw new LangbiangError('CONFIG_INVALID', err.message);
    throw err;
  }
}

/** `512KiB`, `2GiB`, `100MB`, `4096B`, or a number of bytes. Returns whole bytes. */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') return Math.round(plainNumber(input, () => sizeError(input)));
  if (typeof input !== 'string' || input.length > MAX_UNIT_TEXT) throw sizeError(input);
  // trimmed first: one \s* between two disjoint classes cannot backtrack quadratically
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(input.trim());
  if (!m) throw sizeError(input);
  const unit = (m[2] as string).toLowerCase();
  const factor = unit === '' ? 1 : SIZE_UNITS_BYTES[unit];
  if (factor === undefined) throw sizeError(input);
  const bytes = Number(m[1]) * factor;
  if (!Number.isFinite(bytes)) throw sizeError(input);
  return Math.round(bytes);
}

/** The shortest exact binary form of a byte count (`2GiB`), falling back to bytes. */
export function formatSize(bytes: number): string {
  for (const unit of ['TiB', 'GiB', 'MiB', 'KiB'] as const) {
    const f = SIZE_UNITS_BYTES[unit.toLowerCase()] as number;
    if (bytes >= f && bytes % f === 0) return `${bytes / f}${unit}`;
  }
  return `${bytes}B`;
}
