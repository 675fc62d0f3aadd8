import type { Clock } from '../core/clock.js';

export interface ClockStepInfo {
  /** how far the wall clock moved against the monotonic clock since the previous check */
  stepMs: number;
  /** 'synced': the clock has just become synchronised; 'stepped': it jumped by more than the threshold */
  reason: 'synced' | 'stepped';
  /** is the clock synchronised now (pass as markSynced when correcting the store) */
  synced: boolean;
  bootId: string;
}

export interface ClockWatcherOptions {
  /**
   * Called when the clock becomes synchronised (any step, even 0) or jumps by more than
   * stepThresholdMs. Readings stamped before are off by exactly stepMs: correct them with
   * store.correctUnsyncedTimestamps(bootId, stepMs, { markSynced: info.synced }).
   */
  onStep: (stepMs: number, info: ClockStepInfo) => void;
  /**
   * The clock was already synchronised at the first check: readings an earlier process of this
   * boot took before sync cannot be shifted by a step this process never saw, but can be
   * re-stamped from their monotonic time: store.rebaseUnsyncedTimestamps(bootId, offsetMs).
   */
  onSyncedAtStart?: (offsetMs: number, bootId: string) => void;
  /** a callback threw; default: ignored after writing one line to stderr */
  onError?: (err: unknown) => void;
  /** default 1000 ms: readings stamped between a step and the next check are shifted with the ones before it */
  intervalMs?: number;
  /** default 2000 ms: smaller moves are NTP slewing and jitter, not steps */
  stepThresholdMs?: number;
}

/**
 * Watches wall - monotonic. That offset only changes when the wall clock is set, so its change
 * between two checks is the step, whatever time passed between them.
 */
export class ClockWatcher {
  private readonly clock: Clock;
  private readonly opts: ClockWatcherOptions;
  private timer: NodeJS.Timeout | null = null;
  private prevOffset: number | null = null;
  private prevSynced = false;

  constructor(clock: Clock, opts: ClockWatcherOptions) {
    this.clock = clock;
    this.opts = opts;
  }

  start(): void {
    if (this.timer) return;
    this.safeCheck();
    this.timer = setInterval(() => this.safeCheck(), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Compares with the previous check; calls the callbacks; returns the step seen, if any. */
  check(): ClockStepInfo | null {
    const synced = this.clock.isSynced();
    const offset = this.clock.wallNow() - this.clock.monoNow();
    const bootId = this.clock.bootId;
    if (this.prevOffset === null) {
      this.prevOffset = offset;
      this.prevSynced = synced;
      if (synced) this.opts.onSyncedAtStart?.(offset, bootId);
      return null;
    }
    const stepMs = offset - this.prevOffset;
    let info: ClockStepInfo | null = null;
    if (synced && !this.prevSynced) info = { stepMs, reason: 'synced', synced, bootId };
    else if (Math.abs(stepMs) > (this.opts.stepThresholdMs ?? 2000))
      info = { stepMs, reason: 'stepped', synced, bootId };
    this.prevOffset = offset;
    this.prevSynced = synced;
    if (info) this.opts.onStep(info.stepMs, info);
    return info;
  }

  private safeCheck(): void {
    try {
      this.check();
    } catch (err) {
      if (this.opts.onError) this.opts.onError(err);
      else process.stderr.write(`langbiang clock watcher: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
}

/** What the watcher needs of the store (structural, so clock/ does not depend on store/). */
export interface CorrectableStore {
  correctUnsyncedTimestamps(bootId: string, stepMs: number, opts?: { markSynced?: boolean }): number;
  rebaseUnsyncedTimestamps(bootId: string, offsetMs: number, opts?: { markSynced?: boolean }): number;
}

/**
 * The usual wiring: both callbacks correct the store; report says what was done (for the log and
 * the 'clock-synced' event).
 */
export function storeCorrection(
  store: CorrectableStore,
  report?: (e: { stepMs: number; corrected: number; reason: ClockStepInfo['reason'] | 'synced-at-start' }) => void,
): Pick<ClockWatcherOptions, 'onStep' | 'onSyncedAtStart'> {
  return {
    onStep: (stepMs, info) => {
      const corrected = store.correctUnsyncedTimestamps(info.bootId, stepMs, { markSynced: info.synced });
      report?.({ stepMs, corrected, reason: info.reason });
    },
    onSyncedAtStart: (offsetMs, bootId) => {
      const corrected = store.rebaseUnsyncedTimestamps(bootId, offsetMs, { markSynced: true });
      if (corrected > 0) report?.({ stepMs: 0, corrected, reason: 'synced-at-start' });
    },
  };
}
