import { BounceFilter, type Level } from './bounce-filter.js';

/**
 * Debounced closures of one contact (a reed switch, a light barrier, a loop detector's output),
 * dated at their first edge on the backend clock. Bounce is removed by the loop detectors'
 * BounceFilter: a change counts once it has held `minPulseMs`.
 */
export class PulseInput {
  private readonly filter: BounceFilter;
  private pending: number[] = [];

  constructor(minPulseMs: number, t0: number) {
    this.filter = new BounceFilter(minPulseMs, 0, t0);
  }

  edge(level: Level, t: number): void {
    this.filter.push(level, t, (c) => {
      if (c.level === 1) this.pending.push(c.t);
    });
  }

  /** Pulses confirmed up to `now`, handed out once. */
  take(now: number): number[] {
    this.filter.settle(now, (c) => {
      if (c.level === 1) this.pending.push(c.t);
    });
    const out = this.pending;
    this.pending = [];
    return out;
  }
}
