import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { Clock } from '../core/clock.js';

/**
 * While the clock is not synchronised, wall time is never reported before this instant: a Pi with
 * no RTC boots at 1970, and a reading stamped 1970 is useless and looks like a bug downstream.
 * Such readings are stamped FLOOR + monotonic ms (as if the board had booted at the floor) and
 * flagged unsynced; once NTP synchronises, the ClockWatcher sees the offset jump and the store
 * shifts them by exactly that step, which lands each on its true time.
 */
export const UNSYNCED_TIME_FLOOR_MS = Date.UTC(2020, 0, 1);

/** systemd-timesyncd creates this file once it has synchronised the clock. */
export const TIMESYNCD_SYNCHRONIZED_FILE = '/run/systemd/timesync/synchronized';
const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';
const PROBE_CACHE_MS = 1000;

export interface SystemClockOptions {
  /** config override: treat the clock as synchronised (RTC fitted, chrony, or not Linux) */
  assumeSynced?: boolean;
  /** is the clock synchronised now; default: the timesyncd marker file exists */
  syncProbe?: () => boolean;
  /** where the boot id is read from (default the kernel's) */
  bootIdFile?: string;
  /** raw wall clock, ms (default Date.now); for tests */
  wallSource?: () => number;
  /** monotonic ms since boot (default CLOCK_MONOTONIC via process.hrtime); for tests */
  monoSource?: () => number;
}

export function timesyncdProbe(file = TIMESYNCD_SYNCHRONIZED_FILE): () => boolean {
  return () => existsSync(file);
}

/** The kernel's id of this boot; a random one where there is none (then unique per process). */
export function readBootId(file = BOOT_ID_FILE): string {
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (id) return id;
  } catch {
    // not Linux, or /proc not mounted: fall through
  }
  return randomUUID();
}

/** hrtime is CLOCK_MONOTONIC on Linux: ms since boot, shared by every process of the boot. */
function hrtimeMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

export class SystemClock implements Clock {
  readonly bootId: string;
  private readonly assumeSynced: boolean;
  private readonly probe: () => boolean;
  private readonly wallSource: () => number;
  private readonly monoSource: () => number;
  private synced = false;
  private probedAt = Number.NEGATIVE_INFINITY;

  constructor(opts: SystemClockOptions = {}) {
    this.bootId = readBootId(opts.bootIdFile);
    this.assumeSynced = opts.assumeSynced === true;
    this.probe = opts.syncProbe ?? timesyncdProbe();
    this.wallSource = opts.wallSource ?? Date.now;
    this.monoSource = opts.monoSource ?? hrtimeMs;
  }

  wallNow(): number {
    const raw = this.wallSource();
    if (raw < UNSYNCED_TIME_FLOOR_MS && !this.isSynced()) return UNSYNCED_TIME_FLOOR_MS + this.monoNow();
    return raw;
  }

  monoNow(): number {
    return this.monoSource();
  }

  /**
   * Sticky: once synchronised, a clock that loses its NTP peer keeps good time for a long while,
   * and flipping back would flag good readings. The probe is asked at most once a second.
   */
  isSynced(): boolean {
    if (this.assumeSynced || this.synced) return true;
    const now = this.monoNow();
    if (now - this.probedAt < PROBE_CACHE_MS) return false;
    this.probedAt = now;
    try {
      this.synced = this.probe();
    } catch {
      this.synced = false;
    }
    return this.synced;
  }
}
