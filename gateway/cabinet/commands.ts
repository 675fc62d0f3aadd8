import { scheduleSchema } from '../config/cabinet-schema.js';
import { pathToString } from '../config/problems.js';
import { parseDuration } from '../config/units.js';
import { LangbiangError } from '../core/errors.js';
import type { ScheduleSpec } from './plan.js';

/** An override may not outlast this: a forgotten manual setting must not hold for good. */
export const MAX_OVERRIDE_MS = 7 * 86_400_000;
const MAX_SCHEDULE_CHARS = 8192;

/**
 * The value of a cabinet `schedule` command: the schedule object (as in the config), the same as a
 * JSON string, or null / "config" to go back to the config's schedule.
 */
export function parseCommandSchedule(value: unknown): ScheduleSpec | 'config' {
  let v = value;
  if (v === null || v === 'config' || v === 'default') return 'config';
  if (typeof v === 'string') {
    if (v.length > MAX_SCHEDULE_CHARS) throw new LangbiangError('COMMAND_INVALID', 'schedule is too long');
    try {
      v = JSON.parse(v);
    } catch {
      throw new LangbiangError(
        'COMMAND_INVALID',
        'schedule must be an object like {"on":"sunset","off":"sunrise","steps":[…]} (or its JSON text)',
      );
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new LangbiangError(
      'COMMAND_INVALID',
      'schedule must be an object like {"on":"sunset","off":"sunrise","steps":[…]}',
    );
  }
  const parsed = scheduleSchema.safeParse(v);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? `schedule.${pathToString(issue.path)}` : 'schedule';
    throw new LangbiangError('COMMAND_INVALID', `${where}: ${issue.message}`);
  }
  return parsed.data;
}

const ON_WORDS = new Set(['on', 'bật', 'true']);
const OFF_WORDS = new Set(['off', 'tắt', 'false']);
const CLEAR_WORDS = new Set(['clear', 'auto', 'schedule']);

/**
 * The value of a cabinet `override` command: a level in % (or on/off), optionally as an object
 * with `for` (a duration like 2h) or `until` (ISO time or ms). Without either, the override holds
 * until the schedule's next switch (the next sunset or sunrise). null / "clear" ends it.
 */
export function parseCommandOverride(
  value: unknown,
  now: number,
  nextSwitchAt: (ms: number) => number,
): { level: number; until: number } | 'clear' {
  let v: unknown = value;
  if (v === null || (typeof v === 'string' && CLEAR_WORDS.has(v.trim().toLowerCase()))) return 'clear';
  let forMs: number | undefined;
  let until: number | undefined;
  if (typeof v === 'string' && v.trim().startsWith('{') && v.length <= MAX_SCHEDULE_CHARS) {
    try {
      v = JSON.parse(v);
    } catch {
      throw new LangbiangError('COMMAND_INVALID', 'override: the JSON text does not parse');
    }
  }
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => !['level', 'for', 'until'].includes(k));
    if (extra.length)
      throw new LangbiangError('COMMAND_INVALID', `override takes level, for and until, not ${extra.join(', ')}`);
    if (o.for !== undefined) {
      try {
        forMs = parseDuration(o.for as string | number);
      } catch {
        throw new LangbiangError(
          'COMMAND_INVALID',
          `override.for: expected a duration like 2h, got ${JSON.stringify(o.for)}`,
        );
      }
    }
    if (o.until !== undefined) {
      until = typeof o.until === 'number' ? o.until : typeof o.until === 'string' ? Date.parse(o.until) : Number.NaN;
      if (!Number.isFinite(until))
        throw new LangbiangError('COMMAND_INVALID', 'override.until: expected an ISO 8601 time or ms since the epoch');
    }
    if (forMs !== undefined && until !== undefined)
      throw new LangbiangError('COMMAND_INVALID', 'override takes for or until, not both');
    v = o.level;
  }
  let level: number;
  if (typeof v === 'boolean') level = v ? 100 : 0;
  else if (typeof v === 'number') level = v;
  else if (typeof v === 'string' && ON_WORDS.has(v.trim().toLowerCase())) level = 100;
  else if (typeof v === 'string' && OFF_WORDS.has(v.trim().toLowerCase())) level = 0;
  else if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) level = Number(v);
  else throw new LangbiangError('COMMAND_INVALID', 'override level must be a percentage 0–100, on or off');
  if (!Number.isFinite(level) || level < 0 || level > 100) {
    throw new LangbiangError('OUT_OF_RANGE', `override level ${level} is out of range (0…100 %)`);
  }
  const end = until ?? (forMs !== undefined ? now + forMs : nextSwitchAt(now));
  if (end <= now) throw new LangbiangError('COMMAND_INVALID', 'override would end in the past');
  if (end - now > MAX_OVERRIDE_MS) throw new LangbiangError('OUT_OF_RANGE', 'an override lasts at most 7 days');
  return { level, until: end };
}
