/**
 * Contact-bounce filter on timestamps. A level change is accepted once the input has held the
 * new level for `minMs`; it is then dated at the FIRST edge of the burst (the true onset, which
 * speed measurement needs). A burst that falls back to the old level within `minMs` is bounce (or
 * a noise spike) and is dropped.
 *
 * Why not onoff's `debounceTimeout`: that is a trailing debounce (lodash) that fires once after
 * the input has been quiet, reading the level then. Two vehicles whose edges come closer than
 * the timeout collapse into one event. Here, every change that holds for `minMs` is kept, so two
 * vehicles are only merged if the real gap between them is shorter than `minMs` (a few ms, while
 * a real gap between cars is hundreds of ms).
 */
export type Level = 0 | 1;

export interface LevelChange {
  level: Level;
  /** ms, on the clock of the edges fed in */
  t: number;
}

export class BounceFilter {
  private stable: Level;
  private raw: Level;
  private rawSince: number;
  /** first departure from the stable level not yet confirmed or cancelled */
  private pendingSince: number | null = null;

  constructor(
    private readonly minMs: number,
    initial: Level = 0,
    t0 = 0,
  ) {
    this.stable = initial;
    this.raw = initial;
    this.rawSince = t0;
  }

  get level(): Level {
    return this.stable;
  }

  /** One raw edge (the input read `level` at time `t`). Accepted changes go to `out`, in time order. */
  push(level: Level, t: number, out: (c: LevelChange) => void): void {
    this.settle(t, out);
    if (level === this.raw) return;
    this.raw = level;
    this.rawSince = t;
    if (level !== this.stable && this.pendingSince === null) this.pendingSince = t;
    this.settle(t, out);
  }

  /** Decide what time alone can decide: nothing has changed on the input up to `now`. */
  settle(now: number, out: (c: LevelChange) => void): void {
    if (this.pendingSince === null || now - this.rawSince < this.minMs) return;
    if (this.raw !== this.stable) {
      this.stable = this.raw;
      out({ level: this.stable, t: this.pendingSince });
    }
    this.pendingSince = null;
  }
}
