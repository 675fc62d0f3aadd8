/**
 * Lets through at most `perWindow` log lines per window and counts the rest, so a gateway that
 * (or a stranger on the broker) sends garbage ten times a second cannot fill a disk with the same warning.
 */
export class LogLimiter {
  private windowStart = 0;
  private used = 0;
  private suppressed = 0;

  constructor(
    private readonly perWindow = 10,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * undefined: stay quiet. Otherwise log now; `suppressed` is how many were held back since the
   * last line that got through.
   */
  take(): { suppressed: number } | undefined {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      this.windowStart = t;
      this.used = 0;
    }
    if (this.used >= this.perWindow) {
      this.suppressed++;
      return undefined;
    }
    this.used++;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    return { suppressed };
  }
}
