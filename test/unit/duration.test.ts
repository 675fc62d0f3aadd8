import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { parseTimeExpr } from '../../gateway/cabinet/time-expr.js';
import { parseDuration as configDuration } from '../../gateway/config/units.js';
import { DurationError, parseDuration } from '../../gateway/core/duration.js';
import { parseTimeArg } from '../../gateway/time-arg.js';

/**
 * One duration grammar, one table, every place that reads a duration: the config (a bare number
 * is ms), the CLI's and the API's relative times (`-5m`; a bare number is refused), and the
 * Node-RED nodes' duration fields (a bare number is minutes). The nodes are plain JS that load the
 * compiled parser from dist/ (npm run build first), exactly as Node-RED loads them on a gateway.
 */

const require = createRequire(import.meta.url);
const { durationField } = require('../../flows/nodes/lib/gateway.js') as {
  durationField: () => Promise<(label: string, value: unknown, dflt: string) => number>;
};

/** Inputs with a unit: the same ms everywhere. */
const WITH_UNIT: [string, number][] = [
  ['500ms', 500],
  ['30s', 30_000],
  ['5m', 300_000],
  ['5min', 300_000],
  ['2h', 7_200_000],
  ['1d', 86_400_000],
  ['90d', 7_776_000_000],
  ['1w', 604_800_000],
  ['1h30m', 5_400_000],
  ['1h 30m', 5_400_000],
  ['1m30s', 90_000],
  ['1.5s', 1500],
  [' 30 s ', 30_000],
  ['0s', 0],
];

/** Not durations anywhere, whatever a call site does with bare numbers. */
const REFUSED = [
  '5 minutes',
  'ms',
  '1x',
  '1h 30',
  '1e3s',
  'h1',
  '30S',
  '1M',
  '-1s',
  '--5m',
  '5m-',
  'sunset',
  `${'1'.repeat(70)}s`,
];

/** Bare numbers: the one rule is "the caller's documented unit, or refused". */
const BARE: { input: string; config: number; node: number }[] = [
  { input: '250', config: 250, node: 250 * 60_000 },
  { input: '10', config: 10, node: 600_000 },
  { input: '1.5', config: 2, node: 90_000 },
];

const NOW = Date.parse('2026-12-06T10:00:00Z');

describe('the one duration parser (gateway/core/duration.ts)', () => {
  it.each(WITH_UNIT)('%j is %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
    expect(parseDuration(input, { bare: 'm' })).toBe(ms);
  });

  it.each(REFUSED)('%j is refused with a typed error naming the value', (input) => {
    let err: unknown;
    try {
      parseDuration(input, { bare: 'ms' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DurationError);
    expect(err).toMatchObject({ code: 'DURATION_INVALID', input });
    expect((err as Error).message).toContain(JSON.stringify(input.slice(0, 40)));
    expect((err as Error).message).toMatch(/is not a duration \(use e\.g\. 500ms, 30s, 5m, 2h, 90d\)$/);
  });

  it('refuses a bare number unless the caller names its unit, and then counts in that unit', () => {
    expect(() => parseDuration('250')).toThrow(/"250" is not a duration \(give a unit, e\.g\. 500ms/);
    expect(() => parseDuration(250)).toThrow(/250 is not a duration \(give a unit/);
    expect(parseDuration('250', { bare: 'ms' })).toBe(250);
    expect(parseDuration(250, { bare: 's' })).toBe(250_000);
    expect(parseDuration('2', { bare: 'h' })).toBe(7_200_000);
    for (const bad of [-5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => parseDuration(bad, { bare: 'ms' })).toThrow(DurationError);
  });
});

describe('every call site reads the same table', () => {
  it('the config: the same ms; a bare number is ms (CONFIG_INVALID for the rest)', () => {
    for (const [input, ms] of WITH_UNIT) expect(configDuration(input), input).toBe(ms);
    for (const b of BARE) expect(configDuration(b.input), b.input).toBe(b.config);
    expect(configDuration(500)).toBe(500);
    for (const input of REFUSED)
      expect(() => configDuration(input), input).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('is not a duration') }),
      );
  });

  it('the CLI and API times: "-" and the same duration before now; a bare "-5" is refused', () => {
    for (const [input, ms] of WITH_UNIT) expect(parseTimeArg(`-${input.trim()}`, NOW), input).toBe(NOW - ms);
    for (const b of BARE)
      expect(() => parseTimeArg(`-${b.input}`, NOW)).toThrow(
        expect.objectContaining({ code: 'USAGE', message: expect.stringContaining('give a unit') }),
      );
    for (const input of REFUSED.filter((s) => !s.startsWith('-')))
      expect(() => parseTimeArg(`-${input}`, NOW), input).toThrow(
        expect.objectContaining({ code: 'USAGE', message: expect.stringContaining('is not a duration') }),
      );
    // the other forms are untouched
    expect(parseTimeArg('2026-12-06T09:00:00Z', NOW)).toBe(NOW - 3_600_000);
    expect(parseTimeArg('1700000000000', NOW)).toBe(1_700_000_000_000);
    expect(() => parseTimeArg('yesterday', NOW)).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });

  it('the Node-RED nodes: the same ms; a bare number is minutes; empty is the default; bad input throws naming the field', async () => {
    const field = await durationField();
    for (const [input, ms] of WITH_UNIT) expect(field('Dry for', input, '10m'), input).toBe(ms);
    for (const b of BARE) expect(field('Dry for', b.input, '10m'), b.input).toBe(b.node);
    expect(field('Dry for', 10, '1h')).toBe(600_000);
    for (const empty of ['', '  ', undefined, null]) expect(field('Dry for', empty, '10m')).toBe(600_000);
    for (const input of REFUSED)
      expect(() => field('Dry for', input, '10m'), input).toThrow(/^Dry for: ".*is not a duration/);
  });

  it("the cabinets' sun offsets: the same grammar, with a unit", () => {
    expect(parseTimeExpr('sunset+15m')).toEqual({ kind: 'sun', event: 'sunset', offsetMs: 900_000 });
    expect(parseTimeExpr('sunrise - 1h30m')).toEqual({ kind: 'sun', event: 'sunrise', offsetMs: -5_400_000 });
    expect(parseTimeExpr('sunset+5min')).toEqual({ kind: 'sun', event: 'sunset', offsetMs: 300_000 });
    expect(() => parseTimeExpr('sunset+15')).toThrow(/"sunset\+15": the offset "15" is not a duration \(give a unit/);
    expect(() => parseTimeExpr('sunset+15x')).toThrow(/the offset "15x" is not a duration/);
    expect(() => parseTimeExpr('sunset+7h')).toThrow(/must be within 6h/);
  });
});

describe("the nodes' number fields", () => {
  const { num } = require('../../flows/nodes/lib/gateway.js') as {
    num: (label: string, value: unknown, dflt: number) => number;
  };

  it('read numbers, take the default only when empty, and refuse the rest naming the field', () => {
    expect(num('Dry below', '25', 30)).toBe(25);
    expect(num('Dry below', ' 2.5 ', 30)).toBe(2.5);
    expect(num('Dry below', 40, 30)).toBe(40);
    for (const empty of ['', '  ', undefined, null]) expect(num('Dry below', empty, 30)).toBe(30);
    for (const bad of ['thirty', '30%', true, Number.NaN])
      expect(() => num('Dry below', bad, 30)).toThrow(/^Dry below: ".*" is not a number$/);
  });
});
