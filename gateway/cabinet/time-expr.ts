import { quoteShort } from '../config/problems.js';
import { DurationError, parseDuration } from '../core/duration.js';
import { LangbiangError } from '../core/errors.js';

/**
 * When something happens in a cabinet's night: relative to the sun ("sunset", "sunset+15m",
 * "sunrise-1h") or at a wall-clock time in the gateway's time zone ("23:00", "05:30").
 */
export type TimeExpr =
  | { kind: 'sun'; event: 'sunset' | 'sunrise'; offsetMs: number }
  | { kind: 'clock'; hour: number; minute: number };

// the offset is a duration of the gateway's one grammar (core/duration.ts), with a unit
const SUN = /^(sunset|sunrise)\s*(?:([+-])\s*(\S.*))?$/;
const CLOCK = /^([01]?\d|2[0-3]):([0-5]\d)$/;
/** an offset beyond this is a typo, not a schedule */
const MAX_OFFSET_MS = 6 * 3_600_000;

/** Longer than any schedule time: refused before a regex sees it (commands carry these from the network). */
const MAX_TEXT = 40;

export function parseTimeExpr(text: string): TimeExpr {
  const t = String(text).length > MAX_TEXT ? '' : String(text).trim().toLowerCase();
  const sun = SUN.exec(t);
  if (sun) {
    const sign = sun[2] === '-' ? -1 : 1;
    let offsetMs = 0;
    if (sun[3] !== undefined) {
      try {
        offsetMs = sign * parseDuration(sun[3]);
      } catch (err) {
        if (!(err instanceof DurationError)) throw err;
        throw new LangbiangError('CONFIG_INVALID', `${quoteShort(String(text))}: the offset ${err.message}`);
      }
    }
    if (Math.abs(offsetMs) > MAX_OFFSET_MS) {
      throw new LangbiangError(
        'CONFIG_INVALID',
        `${quoteShort(String(text))}: the offset from ${sun[1]} must be within 6h`,
      );
    }
    return { kind: 'sun', event: sun[1] as 'sunset' | 'sunrise', offsetMs };
  }
  const clock = CLOCK.exec(t);
  if (clock) return { kind: 'clock', hour: Number(clock[1]), minute: Number(clock[2]) };
  throw new LangbiangError(
    'CONFIG_INVALID',
    `${quoteShort(String(text))} is not a schedule time (use HH:MM, sunset, sunrise, or an offset like sunset+15m, sunrise-30m)`,
  );
}

export function isTimeExpr(text: string): boolean {
  try {
    parseTimeExpr(text);
    return true;
  } catch {
    return false;
  }
}

export function formatTimeExpr(e: TimeExpr): string {
  if (e.kind === 'clock') return `${String(e.hour).padStart(2, '0')}:${String(e.minute).padStart(2, '0')}`;
  if (e.offsetMs === 0) return e.event;
  const m = Math.round(Math.abs(e.offsetMs) / 60_000);
  return `${e.event}${e.offsetMs < 0 ? '-' : '+'}${m}m`;
}
