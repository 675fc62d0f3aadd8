/** Backlog pacing: a token bucket in readings per second (the cloud's rate limit, not ours). */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerS: number,
    readonly capacity: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.last = now;
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.ratePerS) / 1000);
      this.last = now;
    }
  }

  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  take(n: number, now: number): void {
    this.refill(now);
    this.tokens -= n;
  }

  /** ms until n tokens are there */
  waitFor(n: number, now: number): number {
    this.refill(now);
    const missing = Math.min(n, this.capacity) - this.tokens;
    return missing <= 0 ? 0 : Math.ceil((missing * 1000) / this.ratePerS);
  }
}

/** Reconnect delay: exponential, capped, with jitter so a city's gateways do not reconnect in step. */
export function backoffDelay(
  attempt: number,
  minMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(base / 2 + random() * (base / 2));
}
