import type { DeviceHealth, HealthState } from '../../gateway/core/driver.js';

export interface BackoffPolicy {
  /** consecutive failed polls before a device is backed off */
  offlineAfter: number;
  /** first backoff; doubles on every failed retry */
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { offlineAfter: 3, baseMs: 1_000, maxMs: 5 * 60_000 };

/** How one poll of a device went, from the bus's point of view. */
export type PollOutcome =
  /** at least one block came back with data */
  | 'ok'
  /** the device answered, but only with Modbus exceptions: alive, so never backed off */
  | 'answered_with_exception'
  /** no usable answer at all (timeouts, CRC errors, bad frames) */
  | 'no_answer';

interface DeviceState {
  device: string;
  consecutiveFailures: number;
  polls: number;
  errors: number;
  lastError?: string;
  lastOkAt?: number;
  retryAt?: number;
  exceptionOnly: boolean;
  unsupported: string[];
}

/**
 * Per-device health and backoff. A unit that stops answering costs a full timeout per request;
 * after a few failed polls it is only asked again after 1 s, 2 s, 4 s … (capped), so one dead
 * unit cannot starve the others on a shared bus. Any answer resets it.
 */
export class DeviceHealthTracker {
  private readonly devices = new Map<string, DeviceState>();

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly now: () => number,
  ) {}

  private state(device: string): DeviceState {
    let s = this.devices.get(device);
    if (!s) {
      s = { device, consecutiveFailures: 0, polls: 0, errors: 0, exceptionOnly: false, unsupported: [] };
      this.devices.set(device, s);
    }
    return s;
  }

  /** While backed off: the wall time of the next try. Undefined when the device may be asked now. */
  backedOffUntil(device: string): number | undefined {
    const s = this.devices.get(device);
    if (s?.retryAt === undefined) return undefined;
    return this.now() < s.retryAt ? s.retryAt : undefined;
  }

  /** failed its last poll: its requests go behind those of healthy units */
  isSuspect(device: string): boolean {
    return (this.devices.get(device)?.consecutiveFailures ?? 0) > 0;
  }

  record(device: string, outcome: PollOutcome, error?: string): DeviceHealth {
    const s = this.state(device);
    s.polls++;
    if (outcome === 'ok' || outcome === 'answered_with_exception') {
      s.consecutiveFailures = 0;
      s.retryAt = undefined;
      s.exceptionOnly = outcome === 'answered_with_exception';
      if (outcome === 'ok') s.lastOkAt = this.now();
      if (error) {
        s.errors++;
        s.lastError = error;
      }
    } else {
      s.errors++;
      s.consecutiveFailures++;
      s.exceptionOnly = false;
      if (error) s.lastError = error;
      const over = s.consecutiveFailures - this.policy.offlineAfter;
      if (over >= 0) {
        const delay = Math.min(this.policy.maxMs, this.policy.baseMs * 2 ** Math.min(over, 30));
        s.retryAt = this.now() + delay;
      }
    }
    return this.snapshot(s);
  }

  /** The points this unit refuses (see DeviceHealth.unsupported); an empty list clears them. */
  setUnsupported(device: string, points: readonly string[]): void {
    this.state(device).unsupported = [...points].sort();
  }

  get(device: string): DeviceHealth {
    return this.snapshot(this.state(device));
  }

  all(): DeviceHealth[] {
    return [...this.devices.values()].map((s) => this.snapshot(s));
  }

  private snapshot(s: DeviceState): DeviceHealth {
    let state: HealthState = 'ok';
    if (s.retryAt !== undefined) state = 'offline';
    else if (s.consecutiveFailures > 0 || s.exceptionOnly) state = 'degraded';
    const h: DeviceHealth = {
      device: s.device,
      state,
      consecutiveFailures: s.consecutiveFailures,
      polls: s.polls,
      errors: s.errors,
    };
    if (s.lastError !== undefined) h.lastError = s.lastError;
    if (s.lastOkAt !== undefined) h.lastOkAt = s.lastOkAt;
    if (s.retryAt !== undefined) h.retryAt = s.retryAt;
    if (s.unsupported.length > 0) h.unsupported = [...s.unsupported];
    return h;
  }
}
