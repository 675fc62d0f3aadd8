import type { Clock } from '../core/clock.js';

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  readonly bootId: string;
  private wall: number;
  private mono: number;
  private synced: boolean;

  constructor(opts: { wall?: number; mono?: number; synced?: boolean; bootId?: string } = {}) {
    this.wall = opts.wall ?? Date.UTC(2026, 0, 1);
    this.mono = opts.mono ?? 0;
    this.synced = opts.synced ?? true;
    this.bootId = opts.bootId ?? 'manual-boot';
  }

  wallNow(): number {
    return this.wall;
  }

  monoNow(): number {
    return this.mono;
  }

  isSynced(): boolean {
    return this.synced;
  }

  /** time passes: wall and monotonic move together */
  advance(ms: number): void {
    this.wall += ms;
    this.mono += ms;
  }

  /** the wall clock is set (NTP step, `date -s`): monotonic time does not move */
  stepWall(deltaMs: number): void {
    this.wall += deltaMs;
  }

  setWall(ms: number): void {
    this.wall = ms;
  }

  setSynced(synced: boolean): void {
    this.synced = synced;
  }
}
