/**
 * What the loop-detector driver needs of GPIO, behind one interface so the same driver runs on a
 * Pi (sysfs backend, through onoff) and in the demo and tests (simulated backend). Pins are the
 * board's line numbers (BCM numbers on a Pi); turning them into kernel numbers is the backend's job.
 */
import type { Level } from './bounce-filter.js';

export interface EdgeEvent {
  /** the logical level after the edge (active-low inputs already inverted) */
  level: Level;
  /** ms on the backend's clock (`now()`), taken as close to the edge as the backend can */
  t: number;
}

export interface WatchedInput {
  readonly pin: number;
  read(): Promise<Level>;
  close(): Promise<void>;
}

export interface OutputPin {
  readonly pin: number;
  write(level: Level): Promise<void>;
  read(): Promise<Level>;
  close(): Promise<void>;
}

export interface InputOptions {
  activeLow?: boolean;
}

/** A hint that two inputs are the two loops of one lane, `distance` metres apart (used by the simulator; hardware ignores it). */
export interface LoopPairHint {
  a: number;
  b?: number;
  distance?: number;
}

export interface GpioBackend {
  readonly kind: 'sysfs' | 'simulated';
  /** the clock edge timestamps are on (ms, monotonic) */
  now(): number;
  /** export a pin as an input and report both edges, unfiltered (the driver debounces) */
  watch(pin: number, onEdge: (e: EdgeEvent) => void, opts?: InputOptions): Promise<WatchedInput>;
  output(pin: number, initial?: Level): Promise<OutputPin>;
  /** deliver every edge that happened up to now (the simulator; hardware delivers as it goes) */
  sync?(): void;
  describeLane?(hint: LoopPairHint): void;
  close(): Promise<void>;
}
