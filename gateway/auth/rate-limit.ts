export interface LimiterOptions {
  /** failures of one user name from one address before that pair is locked out for a while */
  userFailures?: number;
  /** failures from one address before it is locked out (several users share a farm's Wi-Fi) */
  ipFailures?: number;
  /** first lockout; doubles with each further failure */
  baseLockMs?: number;
  maxLockMs?: number;
  /** failures older than this are forgotten */
  windowMs?: number;
  now?: () => number;
}

interface Entry {
  failures: number;
  lockedUntil: number;
  lastFailAt: number;
}

const MAX_ENTRIES = 10_000;

function pairKey(ip: string, user: string): string {
  return `pair:${user.toLowerCase()}\u0000${ip}`;
}

/**
 * Login throttling per (user name, client address) and per address, with exponential backoff:
 * guessing a password over the farm's Wi-Fi takes years, and nobody on the network can lock the
 * technician out by mistyping the technician's name on their own phone — only that phone waits.
 * An attempt counts when it starts (attempt()), so a burst of parallel requests is throttled like
 * the same requests one after another.
 */
export class LoginLimiter {
  private readonly entries = new Map<string, Entry>();
  private readonly o: Required<LimiterOptions>;

  constructor(opts: LimiterOptions = {}) {
    this.o = {
      userFailures: opts.userFailures ?? 5,
      ipFailures: opts.ipFailures ?? 20,
      baseLockMs: opts.baseLockMs ?? 30_000,
      maxLockMs: opts.maxLockMs ?? 15 * 60_000,
      windowMs: opts.windowMs ?? 60 * 60_000,
      now: opts.now ?? Date.now,
    };
  }

  /**
   * The start of a login attempt: 0 when it may go on — it counts as a failure until succeeded()
   * says otherwise — else the seconds to wait (and it does not count).
   */
  attempt(ip: string, user: string): number {
    const wait = this.retryAfter(ip, user);
    if (wait === 0) this.failed(ip, user);
    return wait;
  }

  /** 0 when a login may be tried now, else the seconds to wait. */
  retryAfter(ip: string, user: string): number {
    const t = this.o.now();
    let wait = 0;
    for (const key of [`ip:${ip}`, pairKey(ip, user)]) {
      const e = this.entry(key, t);
      if (e && e.lockedUntil > t) wait = Math.max(wait, e.lockedUntil - t);
    }
    return Math.ceil(wait / 1000);
  }

  failed(ip: string, user: string): void {
    const t = this.o.now();
    this.bump(`ip:${ip}`, this.o.ipFailures, t);
    this.bump(pairKey(ip, user), this.o.userFailures, t);
  }

  succeeded(ip: string, user: string): void {
    this.entries.delete(pairKey(ip, user));
    const e = this.entries.get(`ip:${ip}`);
    if (e && e.lockedUntil <= this.o.now()) this.entries.delete(`ip:${ip}`);
  }

  private entry(key: string, t: number): Entry | undefined {
    const e = this.entries.get(key);
    if (e && e.lockedUntil <= t && t - e.lastFailAt > this.o.windowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  private bump(key: string, threshold: number, t: number): void {
    if (this.entries.size >= MAX_ENTRIES) this.prune(t);
    const e = this.entry(key, t) ?? { failures: 0, lockedUntil: 0, lastFailAt: t };
    e.failures++;
    e.lastFailAt = t;
    if (e.failures >= threshold) {
      const lock = Math.min(this.o.maxLockMs, this.o.baseLockMs * 2 ** (e.failures - threshold));
      e.lockedUntil = t + lock;
    }
    this.entries.set(key, e);
  }

  private prune(t: number): void {
    for (const [k, e] of this.entries)
      if (e.lockedUntil <= t && t - e.lastFailAt > this.o.windowMs) this.entries.delete(k);
    // still full (an attack from many addresses): forget the oldest half rather than grow
    if (this.entries.size >= MAX_ENTRIES) {
      const keys = [...this.entries.keys()].slice(0, MAX_ENTRIES / 2);
      for (const k of keys) this.entries.delete(k);
    }
  }
}
