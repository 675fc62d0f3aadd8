import { DurationError, parseDuration } from './core/duration.js';
import { LangbiangError } from './core/errors.js';

const TIME_EXAMPLES = 'use ISO 8601 like 2026-11-26T08:00:00Z, epoch ms, or a time ago like -24h or -1h30m';

/**
 * A time as a technician types it, for the CLI (`export --from -24h`) and the HTTP API
 * (`/api/readings?from=-5m`) alike: "2026-11-26T10:00:00Z", "2026-11-26", "1700000000000" (epoch
 * ms), or a time ago: "-" and a duration of the gateway's one grammar ("-5m", "-24h", "-1h30m").
 * A bare "-5" is refused: it has no unit, and this is not a place to guess one.
 */
export function parseTimeArg(text: string, now = Date.now()): number {
  const t = String(text).trim();
  if (t.startsWith('-')) {
    try {
      return now - parseDuration(t.slice(1));
    } catch (err) {
      // one sentence: the duration's own message says what is wrong with it
      if (err instanceof DurationError) throw new LangbiangError('USAGE', `not a time ago: ${err.message}`);
      throw err;
    }
  }
  if (/^\d{10,}$/.test(t)) return Number(t);
  const ms = Date.parse(t);
  if (Number.isNaN(ms))
    throw new LangbiangError('USAGE', `${JSON.stringify(t.slice(0, 40))} is not a time (${TIME_EXAMPLES})`);
  return ms;
}
