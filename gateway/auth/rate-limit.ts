export interface LimiterOptions {
  /** failures of one user name before it is locked out for a while */
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

/**
 * Login throttling per user name and per client address, with exponential backoff: guessing a
 * password over the farm's Wi-Fi takes years, and one noisy phone cannot lock the farmer out for long.
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

  /** 0 when a login may be tried now, else the seconds to wait. */
  retryAfter(ip: string, user: string): number {
    const t = this.o.now();
    let wait = 0;
    for (const key of [`ip:${ip}`, `user:${user.toLowerCase()}`]) {
      const e = this.entry(key, t);
      if (e && e.lockedUntil > t) wait = Math.max(wait, e.lockedUntil - t);
    }
    return Math.ceil(wait / 1000);
  }

  failed(ip: string, user: string): void {
    const t = this.o.now();
    this.bump(`ip:${ip}`, this.o.ipFailures, t);
    this.bump(`user:${user.toLowerCase()}`, this.o.userFailures, t);
  }

  succeeded(ip: string, user: string): void {
    this.entries.delete(`user:${user.toLowerCase()}`);
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
