import type { AlarmRuleConfig } from '../config/schema.js';
import type { Quality } from '../core/reading.js';

/** What an alarm rule remembers across restarts (an active alarm stays active after a reboot). */
export interface PersistedAlarmState {
  active: boolean;
  /** wall ms the alarm was raised */
  since?: number;
  /** the sensor is silent or faulty: we cannot tell whether the condition still holds */
  fault: boolean;
  faultSince?: number;
  /** last good value seen, for the banner */
  value?: number;
  valueAt?: number;
}

export type AlarmTransition = 'raised' | 'cleared' | 'fault' | 'fault_cleared';

export interface Observation {
  ts: number;
  value: number | string | null;
  quality: Quality;
}

/**
 * One rule's state machine, pure (no clock, no I/O): readings and the passing of time go in,
 * transitions come out.
 *
 * - threshold: raised once the value has been past `above`/`below` for `for`; cleared only once it
 *   is back past the threshold by `hysteresis` — a value hovering at the line does not flap;
 * - rate of rise: raised when the value rose by `rise.by` or more within `rise.within` (against
 *   the lowest good value in that window);
 * - silence: no good reading for `silentAfter` is a fault. A fault never clears the alarm: the
 *   water may still be rising while the sensor is dead. Only good readings clear it.
 */
export class AlarmRuleState {
  private state: PersistedAlarmState;
  /** when the raise condition started to hold (not persisted: a reboot restarts the count) */
  private pendingSince: number | undefined;
  /** good values within rise.within, oldest first */
  private window: Array<{ ts: number; value: number }> = [];
  private lastGoodAt: number;

  constructor(
    readonly rule: AlarmRuleConfig,
    restored: PersistedAlarmState | undefined,
    /** wall ms the rule started watching: a sensor gets silentAfter from here to speak */
    startedAt: number,
  ) {
    this.state = restored ? { ...restored } : { active: false, fault: false };
    this.lastGoodAt = startedAt;
  }

  get snapshot(): PersistedAlarmState & { pending: boolean } {
    return { ...this.state, pending: this.pendingSince !== undefined && !this.state.active };
  }

  observe(o: Observation): AlarmTransition[] {
    if (o.quality !== 'good' || typeof o.value !== 'number' || !Number.isFinite(o.value)) return [];
    const out: AlarmTransition[] = [];
    const v = o.value;
    this.lastGoodAt = Math.max(this.lastGoodAt, o.ts);
    this.state.value = v;
    this.state.valueAt = o.ts;
    if (this.state.fault) {
      this.state.fault = false;
      this.state.faultSince = undefined;
      out.push('fault_cleared');
    }
    const rise = this.riseWith(o.ts, v);
    const { above, below, hysteresis: h } = this.rule;
    if (!this.state.active) {
      const raise =
        (above !== undefined && v > above) ||
        (below !== undefined && v < below) ||
        (this.rule.rise !== undefined && rise >= this.rule.rise.by);
      if (raise) {
        this.pendingSince ??= o.ts;
        if (o.ts - this.pendingSince >= this.rule.for) out.push(this.raise(o.ts));
      } else {
        this.pendingSince = undefined;
      }
    } else {
      const clear =
        (above === undefined || v <= above - h) &&
        (below === undefined || v >= below + h) &&
        (this.rule.rise === undefined || rise < Math.max(this.rule.rise.by - h, Number.MIN_VALUE));
      if (clear) {
        this.state.active = false;
        this.state.since = undefined;
        this.pendingSince = undefined;
        out.push('cleared');
      }
    }
    return out;
  }

  /** The passing of time: a condition held long enough, a sensor silent too long. */
  tick(now: number): AlarmTransition[] {
    const out: AlarmTransition[] = [];
    if (!this.state.active && this.pendingSince !== undefined && now - this.pendingSince >= this.rule.for) {
      out.push(this.raise(now));
    }
    if (!this.state.fault && now - this.lastGoodAt >= this.rule.silentAfter) {
      this.state.fault = true;
      this.state.faultSince = now;
      this.pendingSince = undefined;
      out.push('fault');
    }
    return out;
  }

  private raise(ts: number): AlarmTransition {
    this.state.active = true;
    this.state.since = ts;
    this.pendingSince = undefined;
    return 'raised';
  }

  /** How much the value rose within the rise window, against its lowest good value there. */
  private riseWith(ts: number, v: number): number {
    const r = this.rule.rise;
    if (!r) return 0;
    this.window.push({ ts, value: v });
    while (this.window.length > 0 && (this.window[0] as { ts: number }).ts < ts - r.within) this.window.shift();
    let min = v;
    for (const w of this.window) if (w.value < min) min = w.value;
    return v - min;
  }
}
