import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const { IrrigationController } = require('../../flows/nodes/lib/irrigation-logic.js') as {
  IrrigationController: new (p: Record<string, number>, now: number) => Controller;
};

interface Action {
  open: boolean;
  reason: string;
}
interface Controller {
  reading(value: number | null, quality: string, now: number): Action | null;
  tick(now: number): Action | null;
  used(now: number): number;
  open: boolean;
}

const S = 1000;
/** how a node property names an environment variable in a flow file */
const envRef = (name: string) => ['$', '{', name, '}'].join('');
const M = 60 * S;
const PARAMS = {
  threshold: 30,
  recoverAt: 35,
  dryForMs: 10 * M,
  maxOpenMs: 15 * M,
  budgetMs: 20 * M,
  windowMs: 60 * M,
  staleAfterMs: 5 * M,
};

/** Feeds a reading every 30 s and ticks every second from t0 to t1; returns the actions with their times. */
function run(
  c: Controller,
  t0: number,
  t1: number,
  value: (t: number) => number | null,
  quality: (t: number) => string = () => 'good',
) {
  const actions: (Action & { t: number })[] = [];
  for (let t = t0; t <= t1; t += S) {
    if ((t - t0) % (30 * S) === 0) {
      const v = value(t);
      if (quality(t) !== 'silent') {
        const a = c.reading(v, quality(t), t);
        if (a) actions.push({ ...a, t });
      }
    }
    const a = c.tick(t);
    if (a) actions.push({ ...a, t });
  }
  return actions;
}

describe('irrigation logic (the langbiang irrigation node)', () => {
  it('opens only after moisture stayed below the threshold for dryFor, and closes when it recovers', () => {
    const c = new IrrigationController(PARAMS, 0);
    // wet, then dry from 5 min, recovering at 20 min
    const actions = run(c, 0, 30 * M, (t) => (t < 5 * M ? 40 : t < 20 * M ? 20 : 36));
    expect(actions[0]).toMatchObject({ open: true, reason: 'dry' });
    expect(actions[0]!.t).toBe(15 * M); // 5 min + 10 min of dryness
    expect(actions[1]).toMatchObject({ open: false, reason: 'recovered', t: 20 * M });
    expect(actions).toHaveLength(2);
  });

  it('a single wet reading restarts the dry timer', () => {
    const c = new IrrigationController(PARAMS, 0);
    const actions = run(c, 0, 20 * M, (t) => (t === 8 * M ? 31 : 20));
    expect(actions[0]).toMatchObject({ open: true, t: 8 * M + 30 * S + 10 * M });
  });

  it('closes after maxOpen and never exceeds the budget per window, even when the soil stays dry', () => {
    const c = new IrrigationController(PARAMS, 0);
    const actions = run(c, 0, 2 * 60 * M, () => 10);
    const opens = actions.filter((a) => a.open);
    expect(actions[1]).toMatchObject({ open: false, reason: 'max-duration' });
    expect(actions[1]!.t - actions[0]!.t).toBe(15 * M);
    // after max-duration it soaks for dryFor before the next run, and the second run stops at the budget
    expect(actions[2]!.t - actions[1]!.t).toBe(10 * M);
    expect(actions[3]).toMatchObject({ open: false, reason: 'budget' });
    // at no moment did the valve stay open more than 20 minutes within any 60 minutes
    for (let t = 0; t <= 2 * 60 * M; t += M) expect(c.used(t)).toBeLessThanOrEqual(20 * M);
    let openMs = 0;
    for (let i = 0; i < actions.length; i++) {
      if (actions[i]!.open) {
        const close = actions[i + 1]!;
        expect(close.open).toBe(false);
        if (actions[i]!.t < 60 * M) openMs += Math.min(close.t, 60 * M) - actions[i]!.t;
      }
    }
    expect(openMs).toBeLessThanOrEqual(20 * M);
    expect(opens.length).toBeGreaterThanOrEqual(3);
  });

  it('does not open for the last scraps of the budget (a run shorter than minRun)', () => {
    // budget 20 min, max run 15 min: after 15 + soak 10, 5 min are left — at minRun 6 min, no second run
    const c = new IrrigationController({ ...PARAMS, minRunMs: 6 * M }, 0);
    const actions = run(c, 0, 55 * M, () => 10);
    expect(actions.map((a) => a.open)).toEqual([true, false]);
    // with the default (maxOpen / 4 = 3.75 min) the 5 min left are worth a run
    const d = new IrrigationController(PARAMS, 0);
    const more = run(d, 0, 55 * M, () => 10);
    expect(more.map((a) => a.open)).toEqual([true, false, true, false]);
    expect(() => new IrrigationController({ ...PARAMS, minRunMs: 16 * M }, 0)).toThrow(/minRunMs/);
  });

  it('closes when the sensor goes silent (stale) and does not open again until good readings return', () => {
    const c = new IrrigationController(PARAMS, 0);
    // dry from the start; the sensor falls silent at 12 min with the valve open
    const actions = run(
      c,
      0,
      40 * M,
      () => 10,
      (t) => (t >= 12 * M && t < 30 * M ? 'silent' : 'good'),
    );
    expect(actions[0]).toMatchObject({ open: true, t: 10 * M });
    // last good reading at 11:30; stale 5 min later
    expect(actions[1]).toMatchObject({ open: false, reason: 'sensor-stale', t: 11 * M + 30 * S + 5 * M + S });
    // back at 30 min: it must be dry for another 10 min before opening
    expect(actions[2]).toMatchObject({ open: true, t: 40 * M });
  });

  it('failed reads do not count as dry, and an offline device closes the valve at once', () => {
    const c = new IrrigationController(PARAMS, 0);
    const actions = run(
      c,
      0,
      14 * M,
      () => 10,
      (t) => (t >= 10 * M + 30 * S ? 'device_offline' : 'good'),
    );
    expect(actions[0]).toMatchObject({ open: true, t: 10 * M });
    expect(actions[1]).toMatchObject({ open: false, reason: 'sensor-offline', t: 10 * M + 30 * S });
    expect(actions).toHaveLength(2);

    const d = new IrrigationController(PARAMS, 0);
    // timeouts only: never opens, closes nothing
    expect(
      run(
        d,
        0,
        30 * M,
        () => null,
        () => 'timeout',
      ),
    ).toEqual([]);
  });

  it('refuses unsafe settings', () => {
    expect(() => new IrrigationController({ ...PARAMS, budgetMs: 0 }, 0)).toThrow(/budgetMs/);
    expect(() => new IrrigationController({ ...PARAMS, recoverAt: 10 }, 0)).toThrow(/recoverAt/);
    expect(() => new IrrigationController({ ...PARAMS, windowMs: M }, 0)).toThrow(/windowMs/);
  });
});

describe('the default flows', () => {
  const flows = JSON.parse(readFileSync(new URL('../../flows/default-flows.json', import.meta.url), 'utf8')) as {
    id: string;
    type: string;
    z?: string;
    wires?: string[][];
    [k: string]: unknown;
  }[];

  it('wire moisture → irrigation → valve with every parameter from an environment variable', () => {
    const byId = new Map(flows.map((n) => [n.id, n]));
    const irrigation = flows.find((n) => n.type === 'langbiang irrigation')!;
    for (const k of ['threshold', 'hysteresis', 'dryFor', 'maxOpen', 'budget', 'window', 'staleAfter'])
      expect(irrigation[k]).toMatch(/^\$\{IRRIGATION_[A-Z_]+\}$/);
    const reading = flows.find((n) => n.type === 'langbiang reading' && n.wires?.[0]?.includes(irrigation.id))!;
    expect(reading.devices).toBe(envRef('IRRIGATION_SENSOR_DEVICE'));
    const valve = byId.get(irrigation.wires![0]![0]!)!;
    expect(valve).toMatchObject({
      type: 'langbiang command',
      device: envRef('IRRIGATION_VALVE_DEVICE'),
      point: envRef('IRRIGATION_VALVE_POINT'),
    });
  });

  it('every node is on a tab and every wire points at a node', () => {
    const ids = new Set(flows.map((n) => n.id));
    for (const n of flows) {
      if (n.type === 'tab') continue;
      expect(ids.has(n.z!)).toBe(true);
      for (const out of n.wires ?? []) for (const w of out) expect(ids.has(w)).toBe(true);
    }
  });

  it('the streetlight fallback switches on below the lux threshold, off above the upper one, and idles while a schedule runs', () => {
    const fn = flows.find((n) => n.type === 'function' && n.name === 'fallback')!;
    const env: Record<string, string> = {
      STREETLIGHT_LUX_ON: '20',
      STREETLIGHT_LUX_OFF: '50',
      STREETLIGHT_ON_VALUE: 'true',
      STREETLIGHT_OFF_VALUE: 'false',
      STREETLIGHT_SCHEDULE_GRACE: '26h',
    };
    const store = new Map<string, unknown>();
    const body = new Function('msg', 'env', 'flow', 'node', fn.func as string);
    const ctx = [
      { get: (k: string) => env[k] },
      { get: (k: string) => store.get(k), set: (k: string, v: unknown) => store.set(k, v) },
      { status: () => {} },
    ];
    const call = (lux: number, quality = 'good') => body({ payload: lux, quality }, ...ctx);
    expect(call(35)).toBeNull(); // inside the band, no state yet
    expect(call(10)).toMatchObject({ payload: true });
    expect(call(10)).toBeNull(); // no repeat
    expect(call(30)).toBeNull();
    expect(call(80, 'timeout')).toBeNull();
    expect(call(80)).toMatchObject({ payload: false });
    store.set('lastScheduleAt', Date.now());
    expect(call(5)).toBeNull();
  });
});
