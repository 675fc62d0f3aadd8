import { LangbiangError } from '../../gateway/core/errors.js';

/**
 * One request in flight per bus. An RS-485 line is half-duplex and shared: a second request
 * sent before the first answer (or its timeout) collides on the wire. Modbus TCP gateways in
 * front of RS-485 behave the same, so TCP buses use the queue too (with no inter-frame gap).
 */
export interface RequestQueueOptions {
  /** silence kept between the end of one transaction and the start of the next (RTU: >= 3.5 chars) */
  interFrameDelayMs?: number;
  /** default per-request timeout */
  timeoutMs: number;
}

export interface QueuedTask<T> {
  /**
   * Does the work; must settle. `signal` aborts when the queue times the task out or fails it. Only
   * a function that declares the parameter gets one: an AbortController per transaction is the
   * largest garbage a polling gateway makes (its signal outlives a few young-generation
   * collections while the transaction waits in the queue, so it dies in the old generation).
   */
  run: (signal: AbortSignal) => Promise<T>;
  timeoutMs?: number;
  /** used in error messages */
  label?: string;
  /**
   * 'low' for a unit that just failed: it waits while requests for healthy units are queued, so
   * its likely timeout is spent when nobody else needs the bus. It still runs after at most
   * LOW_PRIORITY_MAX_SKIPS others went first, so it is never starved.
   */
  priority?: 'normal' | 'low';
}

const LOW_PRIORITY_MAX_SKIPS = 4;

interface Pending {
  task: QueuedTask<unknown>;
  skipped: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class RequestQueue {
  private readonly waiting: Pending[] = [];
  private running = false;
  private current: { fail: (e: unknown) => void } | undefined;
  private readonly interFrameDelayMs: number;
  private readonly timeoutMs: number;
  private completed = 0;

  constructor(opts: RequestQueueOptions) {
    this.interFrameDelayMs = Math.max(0, opts.interFrameDelayMs ?? 0);
    this.timeoutMs = opts.timeoutMs;
  }

  /** requests waiting plus the one in flight */
  get depth(): number {
    return this.waiting.length + (this.current ? 1 : 0);
  }

  /** transactions finished (answered, failed or timed out) since the queue was made */
  get transactions(): number {
    return this.completed;
  }

  push<T>(task: QueuedTask<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({
        task: task as QueuedTask<unknown>,
        skipped: 0,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
      if (!this.running) void this.drain();
    });
  }

  /** Reject everything waiting and the request in flight (the port went away). */
  failAll(err: unknown): void {
    const waiting = this.waiting.splice(0);
    for (const p of waiting) p.reject(err);
    this.current?.fail(err);
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      for (;;) {
        const next = this.takeNext();
        if (!next) break;
        await this.runOne(next);
        // Silence after every transaction, answered or not: a late answer from a slow unit
        // must not be taken as the next unit's answer, and RTU needs the 3.5-char gap anyway.
        if (this.interFrameDelayMs > 0) await sleep(this.interFrameDelayMs);
      }
    } finally {
      this.running = false;
    }
  }

  private takeNext(): Pending | undefined {
    const first = this.waiting[0];
    if (!first) return undefined;
    let index = 0;
    if (first.task.priority === 'low' && first.skipped < LOW_PRIORITY_MAX_SKIPS) {
      const normal = this.waiting.findIndex((p) => p.task.priority !== 'low');
      if (normal > 0) {
        index = normal;
        for (let i = 0; i < normal; i++) (this.waiting[i] as Pending).skipped++;
      }
    }
    return this.waiting.splice(index, 1)[0];
  }

  private runOne(p: Pending): Promise<void> {
    const timeoutMs = p.task.timeoutMs ?? this.timeoutMs;
    const controller = p.task.run.length > 0 ? new AbortController() : null;
    return new Promise<void>((done) => {
      let settled = false;
      const settle = (ok: boolean, value: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.current = undefined;
        this.completed++;
        if (ok) p.resolve(value);
        else {
          if (controller && !controller.signal.aborted) controller.abort(value);
          p.reject(value);
        }
        done();
      };
      const timer = setTimeout(() => {
        settle(
          false,
          new LangbiangError('MODBUS_TIMEOUT', `${p.task.label ?? 'request'}: no answer within ${timeoutMs} ms`, {
            timeoutMs,
          }),
        );
      }, timeoutMs);
      this.current = { fail: (e) => settle(false, e) };
      let started: Promise<unknown>;
      try {
        started = controller ? p.task.run(controller.signal) : (p.task.run as () => Promise<unknown>)();
      } catch (err) {
        started = Promise.reject(err);
      }
      started.then(
        (v) => settle(true, v),
        (e) => settle(false, e),
      );
    });
  }
}

/**
 * Modbus RTU frames are separated by at least 3.5 character times of silence; above 19200 baud
 * the spec fixes it at 1.75 ms. One character = start bit + data bits + parity bit + stop bits.
 */
export function rtuInterFrameDelayMs(o: {
  baudRate: number;
  dataBits?: number;
  parity?: string;
  stopBits?: number;
}): number {
  if (o.baudRate > 19200) return 1.75;
  const bitsPerChar = 1 + (o.dataBits ?? 8) + (o.parity && o.parity !== 'none' ? 1 : 0) + (o.stopBits ?? 1);
  return (3.5 * bitsPerChar * 1000) / o.baudRate;
}
