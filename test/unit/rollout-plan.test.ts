import { describe, expect, it } from 'vitest';
import {
  eventSignal,
  failuresAllowed,
  parseFailureBudget,
  parseFleet,
  stageCounts,
  stageShares,
  statusSignal,
} from '../../gateway/cli/rollout-plan.js';
import { LangbiangError } from '../../gateway/core/errors.js';
import { parseUpdateOrder, urlProblem } from '../../gateway/update/order.js';

describe('roll-out plan', () => {
  it('reads a fleet as lines (comments, blanks, duplicates) or JSON, refusing ids that are not topic-safe', () => {
    expect(parseFleet('# canaries\ndl-gw-0001\n\ndl-gw-0002  # pole 2\ndl-gw-0001\n')).toEqual([
      'dl-gw-0001',
      'dl-gw-0002',
    ]);
    expect(parseFleet('["a-1", {"id": "b-2"}, {"gateway": "c-3"}]')).toEqual(['a-1', 'b-2', 'c-3']);
    expect(parseFleet('{"gateways": [{"gateway": "x"}]}')).toEqual(['x']);
    expect(() => parseFleet('dl/gw/1\n', 'fleet.txt')).toThrow(
      /fleet.txt: entry 1 \("dl\/gw\/1"\) is not a gateway id/,
    );
    expect(() => parseFleet('+\n')).toThrow(LangbiangError);
    expect(() => parseFleet('# nobody\n', 'f')).toThrow('f names no gateway');
    expect(() => parseFleet('[1,', 'f')).toThrow('f looks like JSON but does not parse');
  });

  it('makes cumulative stages that always end at the whole fleet and always grow', () => {
    expect(stageShares({ stage: '5%' })).toEqual([5, 25, 100]);
    expect(stageShares({ stage: '30%' })).toEqual([30, 100]);
    expect(stageShares({ stages: '1,10,50' })).toEqual([1, 10, 50, 100]);
    expect(() => stageShares({ stages: '10,5' })).toThrow('--stages must grow, e.g. 5,25,100');
    expect(() => stageShares({ stage: '0%' })).toThrow(/--stage must be a share of the fleet like 5%/);
    expect(stageCounts(40, [5, 25, 100])).toEqual([2, 10, 40]);
    expect(stageCounts(3, [5, 25, 100])).toEqual([1, 2, 3]);
    expect(stageCounts(1, [5, 25, 100])).toEqual([1]);
    expect(stageCounts(1000, [1, 100])).toEqual([10, 1000]);
  });

  it('a failure budget is a share of the gateways ordered so far, or a number', () => {
    expect(failuresAllowed(parseFailureBudget('10%'), 10)).toBe(1);
    expect(failuresAllowed(parseFailureBudget('10%'), 9)).toBe(0);
    expect(failuresAllowed(parseFailureBudget('3'), 100)).toBe(3);
    expect(() => parseFailureBudget('ten')).toThrow(/--max-failures must be a share like 10%/);
  });

  it('reads a gateway status and events for the outcome of one version only', () => {
    const ok = { state: 'online', version: '1.4.0', update: { previous: '1.3.0' } };
    expect(statusSignal(ok, '1.4.0')).toEqual({ outcome: 'confirmed' });
    expect(statusSignal({ ...ok, state: 'offline' }, '1.4.0')).toBeNull();
    // running it, still on probation
    expect(
      statusSignal({ ...ok, update: { previous: '1.3.0', pending: { version: '1.4.0', attempts: 1 } } }, '1.4.0'),
    ).toBeNull();
    expect(statusSignal(ok, '1.5.0')).toBeNull();
    const rolled = {
      state: 'online',
      version: '1.3.0',
      update: { previous: null, last: { outcome: 'rolled-back', version: '1.4.0', reason: 'hung' } },
    };
    expect(statusSignal(rolled, '1.4.0')).toEqual({ outcome: 'failed', reason: 'rolled-back: hung' });
    const t = 1_000_000;
    expect(
      eventSignal({ kind: 'update', ts: t, data: { outcome: 'failed', version: '1.4.0', reason: 'x' } }, '1.4.0', t),
    ).toEqual({
      outcome: 'failed',
      reason: 'failed: x',
    });
    expect(
      eventSignal({ kind: 'update', ts: t, data: { outcome: 'failed', version: '1.3.0' } }, '1.4.0', t),
    ).toBeNull();
    expect(
      eventSignal({ kind: 'update', ts: t, data: { outcome: 'downloaded', version: '1.4.0' } }, '1.4.0', t),
    ).toBeNull();
    expect(
      eventSignal({ kind: 'refused', ts: t, data: { topic: 'update', reason: 'bad_signature' } }, '1.4.0', t),
    ).toMatchObject({
      outcome: 'failed',
    });
    // a refusal from long before this order is someone else's
    expect(eventSignal({ kind: 'refused', ts: t - 3_600_000, data: { topic: 'update' } }, '1.4.0', t)).toBeNull();
    expect(eventSignal({ kind: 'refused', ts: t, data: { topic: 'cmd' } }, '1.4.0', t)).toBeNull();
  });
});

describe('update order', () => {
  const good = { v: 1, version: '1.4.0', url: 'https://u.example/a.lbr', size: 10, sha256: 'a'.repeat(64) };
  it('takes a well-formed order and names what is wrong with a bad one', () => {
    expect(parseUpdateOrder(good)).toEqual({
      ok: true,
      order: { version: '1.4.0', url: good.url, size: 10, sha256: good.sha256 },
    });
    const bad = (o: Record<string, unknown>) => {
      const r = parseUpdateOrder({ ...good, ...o });
      return r.ok ? null : r.problem;
    };
    expect(bad({ extra: 1 })).toBe('update order: unknown key "extra"');
    expect(bad({ v: 2 })).toBe('update order: v must be 1');
    expect(bad({ version: 'latest' })).toMatch(/version must be a release version/);
    expect(bad({ url: 'ftp://x/y' })).toMatch(/url must be https:\/\//);
    expect(bad({ url: 'https://user:pw@x/y' })).toMatch(/must not carry a user name or password/);
    expect(bad({ size: 0 })).toMatch(/size must be a whole number of bytes/);
    expect(bad({ sha256: 'A'.repeat(64) })).toMatch(/sha256 must be 64 lower-case hex digits/);
  });

  it('fetches https anywhere, http only from this machine unless allowed', () => {
    expect(urlProblem('https://updates.example/a.lbr', false)).toBeNull();
    expect(urlProblem('http://127.0.0.1:8000/a.lbr', false)).toBeNull();
    expect(urlProblem('http://[::1]:8000/a.lbr', false)).toBeNull();
    expect(urlProblem('http://localhost/a.lbr', false)).toBeNull();
    expect(urlProblem('http://10.0.0.5/a.lbr', false)).toMatch(
      /only from this machine unless sync\.remoteUpdate\.allowHttp/,
    );
    expect(urlProblem('http://10.0.0.5/a.lbr', true)).toBeNull();
  });
});
