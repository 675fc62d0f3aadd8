import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlowsSupervisor } from '../../flows/host/index.js';
import { SystemClock } from '../../gateway/clock/index.js';
import { EventBus } from '../../gateway/core/events.js';
import { Store } from '../../gateway/store/index.js';
import { waitUntil } from '../helpers/cli.js';

/**
 * The langbiang nodes read their duration fields with the gateway's one parser, in real Node-RED
 * (the compiled runner, its own process): a bare number keeps meaning minutes, and a value that is
 * not a duration turns the node red with the field and the value — it never runs on a default.
 * What the nodes show is seen through a `status` node and a `catch` node that log it.
 */

const TAB = 'd0000000000000t1';
const node = (id: string, type: string, props: Record<string, unknown>, wires: string[][] = []) => ({
  id,
  type,
  z: TAB,
  wires,
  ...props,
});
const report = (prefix: string, what: string) =>
  node(`${prefix}000000000000fn`.slice(0, 16), 'function', {
    func: `node.warn('${prefix} ' + JSON.stringify(${what})); return null;`,
    outputs: 1,
  });

const FLOWS = [
  { id: TAB, type: 'tab', label: 'durations' },
  node(
    'd000000000000001',
    'inject',
    {
      props: [{ p: 'payload' }],
      payload: '50',
      payloadType: 'num',
      once: true,
      onceDelay: 0.5,
      repeat: '',
    },
    [['d000000000000002', 'd000000000000003', 'd000000000000004']],
  ),
  // saved by an older version: bare numbers, meaning minutes
  node(
    'd000000000000002',
    'langbiang irrigation',
    {
      threshold: '30',
      hysteresis: '5',
      dryFor: '10',
      maxOpen: '15',
      budget: '20',
      window: '60',
      staleAfter: '5',
    },
    [['SENT000000000002']],
  ),
  node('d000000000000003', 'langbiang irrigation', { threshold: '30', dryFor: '10 minutes' }, [['SENT000000000003']]),
  { ...report('SENT', "{ id: 'd000000000000002', payload: msg.payload, reason: msg.reason }"), id: 'SENT000000000002' },
  { ...report('SENT', "{ id: 'd000000000000003', payload: msg.payload, reason: msg.reason }"), id: 'SENT000000000003' },
  node('d000000000000004', 'langbiang history', { device: 'soil-a1', point: 'moisture', range: 'an hour' }, [[]]),
  node(
    'd000000000000007',
    'inject',
    { props: [{ p: 'from', v: 'last tuesday', vt: 'str' }], once: true, onceDelay: 0.5, repeat: '' },
    [['d000000000000008']],
  ),
  node('d000000000000008', 'langbiang history', { device: 'soil-a1', point: 'moisture', range: '1h' }, [[]]),
  node('d000000000000005', 'status', { scope: null }, [['STATUS0000000000']]),
  {
    ...report('STATUS', '{ id: msg.status.source.id, fill: msg.status.fill, text: msg.status.text }'),
    id: 'STATUS0000000000',
  },
  node('d000000000000006', 'catch', { scope: null, uncaught: false }, [['CATCH00000000000']]),
  { ...report('CATCH', '{ id: msg.error.source.id, message: msg.error.message }'), id: 'CATCH00000000000' },
];

interface Seen {
  id: string;
  fill?: string;
  text?: string;
  message?: string;
  payload?: unknown;
  reason?: string;
}

describe('duration fields of the langbiang nodes in Node-RED', () => {
  let dataDir: string;
  let sup: FlowsSupervisor;
  /** every log line of the runtime: Node-RED's own message text */
  const lines: string[] = [];
  const capture = (_fields: unknown, text: unknown) => lines.push(String(text));
  const seen = (prefix: string): Seen[] =>
    lines.flatMap((l) => (l.startsWith(`${prefix} {`) ? [JSON.parse(l.slice(prefix.length + 1)) as Seen] : []));

  /** The node's status is red with `want`, and a catch node got the same error. */
  async function expectRedWith(id: string, want: string): Promise<void> {
    const status = await waitUntil(() => seen('STATUS').find((s) => s.id === id), 15_000, `the status of ${id}`);
    expect(status).toEqual({ id, fill: 'red', text: want });
    const caught = await waitUntil(() => seen('CATCH').find((s) => s.id === id), 15_000, `the error of ${id}`);
    // Node-RED hands a catch node the error as text, with its name
    expect(caught.message).toBe(`Error: ${want}`);
  }

  beforeAll(async () => {
    dataDir = join(mkdtempSync(join(tmpdir(), 'lb-flows-durations-')), 'data');
    Store.open({ dataDir, clock: new SystemClock({ assumeSynced: true }) }).close();
    mkdirSync(join(dataDir, 'flows'), { recursive: true });
    writeFileSync(join(dataDir, 'flows', 'flows.json'), JSON.stringify(FLOWS));
    sup = new FlowsSupervisor({
      dataDir,
      gatewayId: 'gw-durations',
      credentialSecret: 'test-secret',
      log: { debug() {}, info: capture, warn: capture, error: capture },
      events: new EventBus(),
      history: () => [],
      recorder: { recordEvent: () => {} },
      commands: { execute: async (req) => ({ id: req.id, ok: true, ts: Date.now() }) },
      maxOldSpaceMb: 128,
      maxRssBytes: 1024 * 1024 * 1024,
      heartbeatTimeoutMs: 10_000,
      startTimeoutMs: 60_000,
      backoffInitialMs: 50,
      backoffMaxMs: 1000,
      crashLoopCrashes: 3,
      crashLoopWindowMs: 60_000,
      crashLoopCooldownMs: 60_000,
    });
    sup.start();
    expect(await sup.whenReady(60_000), lines.join('\n')).toBe(true);
  }, 90_000);

  afterAll(async () => {
    await sup?.stop();
    rmSync(join(dataDir, '..'), { recursive: true, force: true });
  });

  it('reads bare numbers as minutes, through the same parser', async () => {
    const ok = await waitUntil(
      () => seen('STATUS').find((s) => s.id === 'd000000000000002'),
      15_000,
      'the status of the irrigation node with bare numbers',
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${lines.join('\n')}`);
    });
    // budget "20" = 20 minutes (as milliseconds it would show 0/0 min)
    expect(ok).toEqual({ id: 'd000000000000002', fill: 'green', text: 'closed · 50 % · 0/20 min' });
  });

  it('turns a node with a bad duration red, naming the field and the value, and never runs it on a default', async () => {
    const want = 'Dry for: "10 minutes" is not a duration (use e.g. 500ms, 30s, 5m, 2h, 90d)';
    await expectRedWith('d000000000000003', want);
    // logged when the flow started, as every node error is
    expect(lines).toContain(want);
    // it sends nothing, not even the start-up "close" the running one sent
    expect(seen('SENT').filter((s) => s.id === 'd000000000000002')).toContainEqual({
      id: 'd000000000000002',
      payload: false,
      reason: 'startup',
    });
    expect(seen('SENT').filter((s) => s.id === 'd000000000000003')).toEqual([]);
  });

  it('fails a history query with a bad range instead of querying a guessed one', async () => {
    const want = 'range: "an hour" is not a duration (use e.g. 500ms, 30s, 5m, 2h, 90d)';
    await expectRedWith('d000000000000004', want);
    // and an unreadable msg.from is not replaced by "to - range" either
    await expectRedWith('d000000000000008', 'from: "last tuesday" is not a time (ms since epoch or ISO 8601)');
  });
});
