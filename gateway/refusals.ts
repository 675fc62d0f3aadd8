/**
 * A budget for events about messages the gateway refused before reading them (unsigned, badly
 * signed, expired…). Anyone on the broker can send those; each refusal is worth an event, but a
 * flood of them must not fill the store and the city's event stream. Within each window the
 * first `perWindow` are recorded; the rest are counted, and the next recorded one says how many
 * were left out (`suppressed`).
 */
export class RefusalBudget {
  private windowStart = 0;
  private used = 0;
  private suppressed = 0;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly perWindow = 10,
    private readonly windowMs = 60_000,
  ) {}

  /** The event's data with `suppressed` added when earlier ones were left out, or null: leave this one out. */
  admit<T extends Record<string, unknown>>(data: T): (T & { suppressed?: number }) | null {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      this.windowStart = t;
      this.used = 0;
    }
    if (this.used >= this.perWindow) {
      this.suppressed++;
      return null;
    }
    this.used++;
    if (this.suppressed === 0) return data;
    const out = { ...data, suppressed: this.suppressed };
    this.suppressed = 0;
    return out;
  }
}
