import { LogLimiter } from './core/log-limiter.js';

/**
 * A budget for events about messages the gateway refused before reading them (unsigned, badly
 * signed, expired…). Anyone on the broker can send those; each refusal is worth an event, but a
 * flood of them must not fill the store and the city's event stream. Within each window the
 * first `perWindow` are recorded; the rest are counted, and the next recorded one says how many
 * were left out (`suppressed`).
 */
export class RefusalBudget {
  private readonly window: LogLimiter;

  constructor(now: () => number = Date.now, perWindow = 10, windowMs = 60_000) {
    this.window = new LogLimiter(perWindow, windowMs, now);
  }

  /** The event's data with `suppressed` added when earlier ones were left out, or null: leave this one out. */
  admit<T extends Record<string, unknown>>(data: T): (T & { suppressed?: number }) | null {
    const ok = this.window.take();
    if (!ok) return null;
    return ok.suppressed === 0 ? data : { ...data, suppressed: ok.suppressed };
  }
}
