import { describe, expect, it } from 'vitest';
import { RequestQueue, rtuInterFrameDelayMs } from '../../drivers/modbus/queue.js';
import { LangbiangError } from '../../gateway/core/errors.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('RequestQueue', () => {
  it('runs one request at a time, in the order they were pushed', async () => {
    const q = new RequestQueue({ timeoutMs: 1000 });
    let inFlight = 0;
    let maxInFlight = 0;
    const order: number[] = [];
    const tasks = [5, 1, 3, 0, 2].map((delay, i) =>
      q.push({
        run: async () => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          order.push(i);
          await sleep(delay);
          inFlight--;
          return i * 10;
        },
      }),
    );
    expect(q.depth).toBe(5);
    expect(await Promise.all(tasks)).toEqual([0, 10, 20, 30, 40]);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(maxInFlight).toBe(1);
    expect(q.transactions).toBe(5);
    expect(q.depth).toBe(0);
  });

  it('times out a request that never settles and moves on to the next', async () => {
    const q = new RequestQueue({ timeoutMs: 50 });
    let aborted = false;
    const stuck = q.push({
      label: 'unit 7 holding 0+1',
      run: (signal) =>
        new Promise(() => {
          signal.addEventListener('abort', () => {
            aborted = true;
          });
        }),
    });
    const next = q.push({ run: async () => 'second' });
    const err = await stuck.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LangbiangError);
    expect((err as LangbiangError).code).toBe('MODBUS_TIMEOUT');
    expect((err as LangbiangError).message).toContain('unit 7 holding 0+1');
    expect(aborted).toBe(true);
    expect(await next).toBe('second');
  });

  it('makes an AbortController only for a task that takes the signal (the garbage of every poll)', async () => {
    const Real = globalThis.AbortController;
    let made = 0;
    globalThis.AbortController = class extends Real {
      constructor() {
        super();
        made++;
      }
    };
    try {
      const q = new RequestQueue({ timeoutMs: 1000 });
      const plain = await Promise.all(Array.from({ length: 50 }, (_, i) => q.push({ run: async () => i })));
      expect(plain).toHaveLength(50);
      expect(made).toBe(0);
      let seen: AbortSignal | undefined;
      await q.push({
        run: async (signal) => {
          seen = signal;
          return 1;
        },
      });
      expect(made).toBe(1);
      expect(seen).toBeInstanceOf(AbortSignal);
      expect(seen?.aborted).toBe(false);
    } finally {
      globalThis.AbortController = Real;
    }
  });

  it('a per-request timeout overrides the default', async () => {
    const q = new RequestQueue({ timeoutMs: 10_000 });
    const t0 = Date.now();
    const err = await q.push({ timeoutMs: 30, run: () => new Promise(() => {}) }).catch((e: unknown) => e);
    expect((err as LangbiangError).code).toBe('MODBUS_TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('a rejection of one request does not disturb the others', async () => {
    const q = new RequestQueue({ timeoutMs: 1000 });
    const a = q.push({
      run: async () => {
        throw new Error('boom');
      },
    });
    const b = q.push({
      run: () => {
        throw new Error('sync boom');
      },
    });
    const c = q.push({ run: async () => 'ok' });
    await expect(a).rejects.toThrow('boom');
    await expect(b).rejects.toThrow('sync boom');
    await expect(c).resolves.toBe('ok');
  });

  it('failAll rejects the request in flight and everything waiting', async () => {
    const q = new RequestQueue({ timeoutMs: 5000 });
    const started: number[] = [];
    const ps = [0, 1, 2].map((i) =>
      q.push({
        run: () => {
          started.push(i);
          return new Promise(() => {});
        },
      }),
    );
    await sleep(5);
    q.failAll(new LangbiangError('BUS_CLOSED', 'port gone'));
    const results = await Promise.allSettled(ps);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const r of results) expect(((r as PromiseRejectedResult).reason as LangbiangError).code).toBe('BUS_CLOSED');
    expect(started).toEqual([0]);
    // the queue keeps working afterwards
    await expect(q.push({ run: async () => 42 })).resolves.toBe(42);
  });

  it('lets requests of healthy units go before those of a failing unit, without starving it', async () => {
    const q = new RequestQueue({ timeoutMs: 1000 });
    const order: string[] = [];
    const task = (name: string, priority: 'normal' | 'low') =>
      q.push({
        priority,
        run: async () => {
          order.push(name);
        },
      });
    const blocker = task('first', 'normal'); // in flight while the rest queue up
    const rest = [task('suspect', 'low'), ...Array.from({ length: 6 }, (_, i) => task(`healthy${i}`, 'normal'))];
    await Promise.all([blocker, ...rest]);
    // the low-priority request waited, but only for 4 others
    expect(order).toEqual(['first', 'healthy0', 'healthy1', 'healthy2', 'healthy3', 'suspect', 'healthy4', 'healthy5']);
  });

  it('keeps the inter-frame silence between transactions', async () => {
    const q = new RequestQueue({ timeoutMs: 1000, interFrameDelayMs: 30 });
    const starts: number[] = [];
    const ends: number[] = [];
    await Promise.all(
      [0, 1, 2].map(() =>
        q.push({
          run: async () => {
            starts.push(performance.now());
            ends.push(performance.now());
          },
        }),
      ),
    );
    for (let i = 1; i < starts.length; i++)
      expect((starts[i] as number) - (ends[i - 1] as number)).toBeGreaterThanOrEqual(28);
  });
});

describe('rtuInterFrameDelayMs', () => {
  it('is 3.5 character times at low baud rates and 1.75 ms above 19200', () => {
    // 9600 8N1: 10 bits per char -> 3.5 * 10 / 9600 s
    expect(rtuInterFrameDelayMs({ baudRate: 9600, dataBits: 8, parity: 'none', stopBits: 1 })).toBeCloseTo(3.6458, 3);
    // 9600 8E1: 11 bits
    expect(rtuInterFrameDelayMs({ baudRate: 9600, dataBits: 8, parity: 'even', stopBits: 1 })).toBeCloseTo(4.0104, 3);
    expect(rtuInterFrameDelayMs({ baudRate: 115200 })).toBe(1.75);
  });
});
