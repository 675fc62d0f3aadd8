import { LangbiangError } from './errors.js';

/**
 * The one duration grammar of the gateway: the config (`timeout: 500ms`), the CLI's and the HTTP
 * API's relative times (`--from -5m`), the remote-config watch, the cabinets' overrides and the
 * Node-RED nodes (`Dry for: 10m`) all read durations through `parseDuration`.
 *
 * Grammar: one or more number+unit parts, `500ms`, `30s`, `5m` (also `5min`), `2h`, `1d`, `1w`,
 * `1h30m`, `1h 30m`; numbers may have a decimal part (`1.5s`). Units are lower case: `m` is
 * minutes and there is no month.
 *
 * A bare number (`500`, or the number 500) has no unit of its own. Its one rule: it counts in the
 * unit its caller documents and passes as `bare` (the config: ms; the nodes' duration fields:
 * minutes). A caller that passes none refuses bare numbers, so a value is never guessed.
 */

export type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd' | 'w';

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

export const DURATION_EXAMPLES = '500ms, 30s, 5m, 2h, 90d';

const NUMBER = String.raw`\d+(?:\.\d+)?`;
// `min` and `ms` before `m`: alternation takes the first that matches
const UNIT = '(?:ms|min|s|m|h|d|w)';
/** One or more number+unit parts (`1h30m`), or a bare number. For the JSON Schema too. */
export const DURATION_PATTERN = String.raw`^\s*(?:${NUMBER}|(?:${NUMBER}\s*${UNIT}\s*)+)$`;

const PART = new RegExp(String.raw`(${NUMBER})\s*(ms|min|s|m|h|d|w)`, 'y');
const BARE = new RegExp(`^${NUMBER}$`);

/**
 * No duration is longer than this. Longer input is refused before any regex sees it, so parsing
 * stays linear in time whatever a config message, a command or a flow carries.
 */
const MAX_TEXT = 64;

export interface DurationOptions {
  /** the unit of a bare number; without it a bare number is refused */
  bare?: DurationUnit;
}

/** A value that is not a duration; `input` is what was given (quoted short in the message). */
export class DurationError extends LangbiangError {
  constructor(
    readonly input: unknown,
    why = `use e.g. ${DURATION_EXAMPLES}`,
  ) {
    super('DURATION_INVALID', `${quote(input)} is not a duration (${why})`);
    this.name = 'DurationError';
  }
}

/** A long value is quoted by its head and length: a 200,000-character flow field makes a one-line message. */
function quote(v: unknown): string {
  if (typeof v !== 'string') return String(v);
  if (v.length <= 40) return JSON.stringify(v);
  return `${JSON.stringify(v.slice(0, 40))}… (${v.length} characters)`;
}

function bareError(input: unknown): DurationError {
  return new DurationError(input, `give a unit, e.g. ${DURATION_EXAMPLES}`);
}

/** Whole milliseconds of a duration; throws `DurationError` (code `DURATION_INVALID`) on anything else. */
export function parseDuration(input: string | number, opts: DurationOptions = {}): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new DurationError(input);
    if (!opts.bare) throw bareError(input);
    return Math.round(input * (UNIT_MS[opts.bare] as number));
  }
  if (typeof input !== 'string' || input.length > MAX_TEXT) throw new DurationError(input);
  const text = input.trim();
  if (text === '') throw new DurationError(input);
  if (BARE.test(text)) {
    if (!opts.bare) throw bareError(input);
    return Math.round(Number(text) * (UNIT_MS[opts.bare] as number));
  }
  let total = 0;
  let at = 0;
  while (at < text.length) {
    // sticky: each part starts exactly where the last one ended, so "5 minutes" fails
    while (text[at] === ' ') at++;
    PART.lastIndex = at;
    const m = PART.exec(text);
    if (!m) throw new DurationError(input);
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    at = PART.lastIndex;
  }
  if (!Number.isFinite(total)) throw new DurationError(input);
  return Math.round(total);
}

/** The shortest exact human form of a ms count (`90d`, `1500ms`), for docs, logs and the console. */
export function formatDuration(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    const f = UNIT_MS[unit] as number;
    if (ms >= f && ms % f === 0) return `${ms / f}${unit}`;
  }
  return `${ms}ms`;
}
