import { performance } from 'node:perf_hooks';
import type { EdgeEvent, GpioBackend, InputOptions, LoopPairHint, OutputPin, WatchedInput } from './backend.js';
import type { Level } from './bounce-filter.js';

/**
 * A stand-in for a Pi's GPIO chip, which cannot run on a development machine or in CI: the same
 * interface as the sysfs backend, with vehicles driving over simulated loops. Each lane gets
 * vehicles at `vehiclesPerMinute` (random headways, never overlapping on the loop), at speeds
 * around `speed` km/h; the second loop of a pair sees each vehicle `distance / speed` later. Edges
 * may carry contact bounce. Edges are generated lazily up to `now()` when `sync()` is called (the
 * driver does before each read), so a demo costs no timers and tests can drive a manual clock.
 */
export interface SimulatedTrafficOptions {
  vehiclesPerMinute?: number;
  /** mean speed, km/h */
  speed?: number;
  /** speeds spread uniformly over speed ± speedSpread */
  speedSpread?: number;
  vehicleLength?: number;
  loopLength?: number;
  /** a burst of extra toggles up to this many ms after each edge (0 = clean contacts) */
  bounceMs?: number;
  /** regular headways instead of random ones (tests) */
  regular?: boolean;
  seed?: number;
  /** the clock (ms); default performance.now() */
  now?: () => number;
}

interface Lane {
  a: number;
  b?: number;
  distance: number;
  nextArrival: number;
  /** pending edges per pin, in time order */
  queue: Map<number, EdgeEvent[]>;
}

// small, seedable PRNG: the demo and tests are reproducible
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class SimulatedGpioBackend implements GpioBackend {
  readonly kind = 'simulated' as const;
  readonly o: Required<Omit<SimulatedTrafficOptions, 'now' | 'seed'>>;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly lanes: Lane[] = [];
  private readonly listeners = new Map<number, (e: EdgeEvent) => void>();
  private readonly levels = new Map<number, Level>();
  private readonly outputs = new Map<number, Level>();
  /** vehicles generated per lane (first pin), for tests and the demo log */
  readonly vehicles = new Map<number, { arrival: number; speed: number }[]>();
  private readonly started: number;

  constructor(opts: SimulatedTrafficOptions = {}) {
    this.o = {
      vehiclesPerMinute: opts.vehiclesPerMinute ?? 12,
      speed: opts.speed ?? 35,
      speedSpread: opts.speedSpread ?? 8,
      vehicleLength: opts.vehicleLength ?? 4.5,
      loopLength: opts.loopLength ?? 2,
      bounceMs: opts.bounceMs ?? 0,
      regular: opts.regular ?? false,
    };
    this.clock = opts.now ?? (() => performance.now());
    this.random = mulberry32(opts.seed ?? 1);
    this.started = this.clock();
  }

  now(): number {
    return this.clock();
  }

  describeLane(hint: LoopPairHint): void {
    if (this.lanes.some((l) => l.a === hint.a)) return;
    const lane: Lane = { a: hint.a, distance: hint.distance ?? 0, nextArrival: 0, queue: new Map() };
    if (hint.b !== undefined) lane.b = hint.b;
    lane.queue.set(hint.a, []);
    if (hint.b !== undefined) lane.queue.set(hint.b, []);
    lane.nextArrival = this.started + this.headway(lane);
    this.lanes.push(lane);
    this.vehicles.set(hint.a, []);
  }

  async watch(pin: number, onEdge: (e: EdgeEvent) => void, _opts?: InputOptions): Promise<WatchedInput> {
    // a watched pin nobody described is a lane of its own
    if (!this.lanes.some((l) => l.a === pin || l.b === pin)) this.describeLane({ a: pin });
    this.listeners.set(pin, onEdge);
    return {
      pin,
      read: async () => {
        this.sync();
        return this.levels.get(pin) ?? 0;
      },
      close: async () => {
        this.listeners.delete(pin);
      },
    };
  }

  async output(pin: number, initial: Level = 0): Promise<OutputPin> {
    this.outputs.set(pin, initial);
    return {
      pin,
      write: async (level) => {
        this.outputs.set(pin, level);
      },
      read: async () => this.outputs.get(pin) ?? 0,
      close: async () => {
        this.outputs.delete(pin);
      },
    };
  }

  sync(): void {
    const now = this.clock();
    for (const lane of this.lanes) {
      // generate every vehicle that has arrived on loop A by now (its later edges are queued)
      while (lane.nextArrival <= now) {
        this.generate(lane, lane.nextArrival);
        lane.nextArrival += this.headway(lane);
      }
      for (const [pin, queue] of lane.queue) {
        let i = 0;
        while (i < queue.length && queue[i]!.t <= now) {
          const e = queue[i]!;
          this.levels.set(pin, e.level);
          this.listeners.get(pin)?.(e);
          i++;
        }
        queue.splice(0, i);
      }
    }
  }

  private headway(lane: Lane): number {
    const mean = 60_000 / this.o.vehiclesPerMinute;
    const slowest = Math.max((this.o.speed - this.o.speedSpread) / 3.6, 1);
    // a vehicle never arrives while the previous one still stands on either loop, so vehicles
    // keep their order between the loops and never overlap on one (plus a short gap)
    const minimum = ((this.o.vehicleLength + this.o.loopLength + lane.distance) / slowest) * 1000 + 50;
    if (this.o.regular) return Math.max(mean, 1);
    return Math.max(minimum, -Math.log(1 - this.random()) * mean);
  }

  private generate(lane: Lane, arrival: number): void {
    const kmh = this.o.regular ? this.o.speed : this.o.speed + (this.random() * 2 - 1) * this.o.speedSpread;
    const v = Math.max(kmh, 1) / 3.6;
    const onMs = ((this.o.vehicleLength + this.o.loopLength) / v) * 1000;
    this.vehicles.get(lane.a)?.push({ arrival, speed: kmh });
    this.pulse(lane.queue.get(lane.a)!, arrival, onMs);
    if (lane.b !== undefined) this.pulse(lane.queue.get(lane.b)!, arrival + (lane.distance / v) * 1000, onMs);
  }

  private pulse(queue: EdgeEvent[], t: number, onMs: number): void {
    this.edge(queue, 1, t);
    this.edge(queue, 0, t + onMs);
    queue.sort((x, y) => x.t - y.t);
  }

  private edge(queue: EdgeEvent[], level: Level, t: number): void {
    queue.push({ level, t });
    if (this.o.bounceMs <= 0) return;
    // bounce: the contact opens and closes again a few times just after the edge
    const other: Level = level === 1 ? 0 : 1;
    let at = t;
    const toggles = 1 + Math.floor(this.random() * 3);
    for (let k = 0; k < toggles; k++) {
      const step = (this.o.bounceMs / (2 * toggles + 1)) * (0.5 + this.random() * 0.5);
      at += step;
      queue.push({ level: other, t: at });
      at += step;
      queue.push({ level, t: at });
    }
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
