import { BounceFilter, type Level, type LevelChange } from './bounce-filter.js';

/**
 * What one loop (or loop pair) measured over one interval, named after FIWARE
 * TrafficFlowObserved: intensity (vehicles), occupancy (0–1), averageVehicleSpeed (km/h).
 */
export interface TrafficInterval {
  /** interval start and end, ms on the edge clock */
  from: number;
  to: number;
  intensity: number;
  /** null for an empty interval */
  occupancy: number | null;
  /** null without a second loop, or when no vehicle crossed both loops in the interval */
  averageSpeed: number | null;
  /** vehicles whose speed was measured */
  speedSamples: number;
}

export interface TrafficMeterOptions {
  /** level changes shorter than this are bounce (ms) */
  minPulseMs: number;
  /** leading-edge to leading-edge distance of the two loops (m); omit for a single loop */
  loopDistance?: number;
  /** plausible speed range for matching a vehicle across the pair (km/h) */
  minSpeed?: number;
  maxSpeed?: number;
  /** the clock of the edges, at the moment the inputs are armed */
  start: number;
}

/** One loop: counts confirmed rising edges and sums the time it was occupied. */
class Loop {
  readonly filter: BounceFilter;
  private occupiedSince: number | null = null;
  private occupiedMs = 0;
  count = 0;
  readonly rises: number[] = [];

  constructor(
    minPulseMs: number,
    start: number,
    private windowStart: number,
  ) {
    this.filter = new BounceFilter(minPulseMs, 0, start);
  }

  readonly onChange = (c: LevelChange): void => {
    if (c.level === 1) {
      this.count++;
      this.rises.push(c.t);
      this.occupiedSince = Math.max(c.t, this.windowStart);
    } else if (this.occupiedSince !== null) {
      // a change dated before this window (confirmed across a read) adds nothing here
      this.occupiedMs += Math.max(0, c.t - this.occupiedSince);
      this.occupiedSince = null;
    }
  };

  edge(level: Level, t: number): void {
    this.filter.push(level, t, this.onChange);
  }

  take(now: number): { count: number; occupiedMs: number } {
    this.filter.settle(now, this.onChange);
    let occupiedMs = this.occupiedMs;
    if (this.occupiedSince !== null) {
      occupiedMs += Math.max(0, now - this.occupiedSince);
      this.occupiedSince = now;
    }
    const out = { count: this.count, occupiedMs };
    this.count = 0;
    this.occupiedMs = 0;
    this.windowStart = now;
    return out;
  }
}

/**
 * A lane's traffic from the presence output of its loop (A) and, optionally, a second loop (B)
 * `loopDistance` metres downstream. Fed raw edges with timestamps; `take(now)` closes the interval
 * since the previous take and starts the next, so the sum of intensities is the number of vehicles,
 * never counted twice or lost between reads.
 *
 * Speed: each confirmed rising edge on B is matched, first-in first-out, with the oldest rising edge
 * on A whose time difference gives a plausible speed; speed = distance / (tB − tA). The interval's
 * average is the arithmetic mean of the vehicles matched in it (time-mean speed).
 */
export class TrafficMeter {
  private readonly a: Loop;
  private readonly b: Loop | null;
  private from: number;
  private readonly minDt: number;
  private readonly maxDt: number;

  constructor(private readonly opts: TrafficMeterOptions) {
    this.from = opts.start;
    this.a = new Loop(opts.minPulseMs, opts.start, opts.start);
    this.b = opts.loopDistance !== undefined ? new Loop(opts.minPulseMs, opts.start, opts.start) : null;
    const d = opts.loopDistance ?? 0;
    this.minDt = (d / ((opts.maxSpeed ?? 250) / 3.6)) * 1000;
    this.maxDt = (d / ((opts.minSpeed ?? 3) / 3.6)) * 1000;
  }

  edgeA(level: Level, t: number): void {
    this.a.edge(level, t);
  }

  edgeB(level: Level, t: number): void {
    this.b?.edge(level, t);
  }

  take(now: number): TrafficInterval {
    const a = this.a.take(now);
    this.b?.take(now);
    const duration = now - this.from;
    const speeds = this.b ? this.matchSpeeds(now) : [];
    const out: TrafficInterval = {
      from: this.from,
      to: now,
      intensity: a.count,
      occupancy: duration > 0 ? round(Math.min(1, Math.max(0, a.occupiedMs / duration)), 4) : null,
      averageSpeed: speeds.length > 0 ? round(speeds.reduce((s, v) => s + v, 0) / speeds.length, 1) : null,
      speedSamples: speeds.length,
    };
    this.from = now;
    return out;
  }

  private matchSpeeds(now: number): number[] {
    const ra = this.a.rises;
    const rb = this.b!.rises;
    const d = this.opts.loopDistance!;
    const speeds: number[] = [];
    let i = 0;
    for (const tb of rb) {
      while (i < ra.length && tb - ra[i]! > this.maxDt) i++; // vehicles B never saw
      const ta = ra[i];
      if (ta === undefined || tb - ta < this.minDt) continue; // B without a plausible A: noise, or a car changing lanes
      speeds.push((d / ((tb - ta) / 1000)) * 3.6);
      i++;
    }
    rb.length = 0;
    // A rises whose B edge may still come stay for the next interval
    const keep = ra.slice(i).filter((ta) => now - ta <= this.maxDt);
    ra.length = 0;
    ra.push(...keep);
    return speeds;
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
