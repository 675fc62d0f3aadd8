import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModbusBus } from '../../drivers/modbus/bus.js';
import { ManualClock } from '../../gateway/clock/index.js';
import { CommandRouter, type RouterDevice } from '../../gateway/commands/router.js';
import type { CommandRequest } from '../../gateway/core/command.js';
import type { Reading } from '../../gateway/core/reading.js';
import { Store } from '../../gateway/store/index.js';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';

const DALI = 10;
const RELAYS = 11;
const SOIL = 12;
const SLOW = 13;

let sim: ModbusSimulator;
let bus: ModbusBus;
let dir: string;
let store: Store;
const clock = new ManualClock({ wall: Date.UTC(2026, 0, 15, 3) });
const readBacks: Reading[] = [];

const devices = new Map<string, RouterDevice>();

function router(extra: Partial<ConstructorParameters<typeof CommandRouter>[0]> = {}): CommandRouter {
  return new CommandRouter({
    clock,
    devices,
    ledger: store.control(),
    audit: store,
    onReadBack: (r) => readBacks.push(r),
    ...extra,
  });
}

let seq = 0;
function cmd(over: Partial<CommandRequest>): CommandRequest {
  return { id: `t-${++seq}`, source: 'mqtt', actor: 'city', device: 'dali', point: 'brightness', value: 100, ...over };
}

function commandEvents() {
  return store.eventsAfter(0, 10_000).filter((e) => e.kind === 'command');
}

function totalWrites(): number {
  return [DALI, RELAYS, SOIL].reduce((n, u) => n + sim.stats(u).writes, 0);
}

beforeAll(async () => {
  const dali = loadProfile('ecodim-dali-gw2');
  const relays = loadProfile('waveshare-modbus-rtu-relay-8ch');
  const soil = loadProfile('comwintop-cwt-soil');
  sim = await ModbusSimulator.tcp({
    units: [
      { unit: DALI, profile: dali },
      { unit: RELAYS, profile: relays },
      { unit: SOIL, profile: soil },
      { unit: SLOW, profile: relays, behaviour: 'slow', slowMs: 800 },
    ],
  });
  bus = ModbusBus.tcp({ id: 'cabinet', host: '127.0.0.1', port: sim.port as number, timeoutMs: 2000 });
  await bus.open();
  const add = (id: string, profile: ReturnType<typeof loadProfile>, unit: number, enabled = true) =>
    devices.set(id, { binding: { id, profile, unit }, bus, busId: 'cabinet', enabled });
  add('dali', dali, DALI);
  add('relays', relays, RELAYS);
  add('soil', soil, SOIL);
  add('slow-relays', relays, SLOW);
  add('spare', relays, RELAYS, false);
  devices.set('orphan', {
    binding: { id: 'orphan', profile: relays, unit: 9 },
    bus: undefined,
    busId: 'rs485-9',
    enabled: true,
  });
  dir = mkdtempSync(join(tmpdir(), 'lb-router-'));
  store = Store.open({ dataDir: dir, clock });
});

afterAll(async () => {
  store?.close();
  await bus?.close();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('command router: validation table', () => {
  const table: [string, Partial<CommandRequest>, string, RegExp][] = [
    ['unknown device', { device: 'dali-9' }, 'UNKNOWN_DEVICE', /no device "dali-9"/],
    ['unknown point', { point: 'brightnes' }, 'UNKNOWN_POINT', /no point "brightnes".*writable: .*brightness/],
    ['read-only point', { device: 'soil', point: 'moisture', value: 50 }, 'NOT_WRITABLE', /read-only/],
    ['out of range (above)', { value: 255 }, 'OUT_OF_RANGE', /255 is out of range for "brightness" \(0…254\)/],
    ['out of range (below)', { value: -1 }, 'OUT_OF_RANGE', /out of range/],
    ['wrong type: text for a level', { value: 'bright' }, 'COMMAND_INVALID', /takes a number, got "bright"/],
    ['wrong type: boolean for a level', { value: true }, 'COMMAND_INVALID', /takes a number/],
    ['wrong type: fraction of a whole-number register', { value: 12.5 }, 'COMMAND_INVALID', /steps of 1/],
    ['wrong type: 7 for a relay', { device: 'relays', point: 'relay_1', value: 7 }, 'COMMAND_INVALID', /on\/off/],
    ['expired', { deadline: clock.wallNow() - 5_000 }, 'EXPIRED', /expired 5 s before/],
    ['disabled device', { device: 'spare', point: 'relay_1', value: true }, 'COMMAND_INVALID', /disabled/],
    [
      'bus not running',
      { device: 'orphan', point: 'relay_1', value: true },
      'DEVICE_ERROR',
      /bus rs485-9 .* not running/,
    ],
    ['no id', { id: '' }, 'COMMAND_INVALID', /id must be a string/],
    ['unknown source', { source: 'telnet' as never }, 'COMMAND_INVALID', /source must be one of/],
    ['deadline not a number', { deadline: 'soon' as never }, 'COMMAND_INVALID', /deadline/],
  ];

  it.each(table)('%s → %s, the device untouched, audited', async (_name, over, code, message) => {
    const r = router();
    const writes = totalWrites();
    const before = commandEvents().length;
    const req = cmd(over);
    const res = await r.execute(req);
    expect(res).toMatchObject({ ok: false, code });
    expect(res.message).toMatch(message);
    expect(res.ts).toBe(clock.wallNow());
    expect(totalWrites()).toBe(writes);
    const events = commandEvents();
    expect(events.length).toBe(before + 1);
    expect(events.at(-1)!.data).toMatchObject({ result: { ok: false, code } });
  });

  it('answers garbage with a result, never a throw', async () => {
    const r = router();
    for (const junk of [null, undefined, 42, 'cmd', [], { id: 5 }, { id: 'x'.repeat(500), source: 'mqtt' }]) {
      const res = await r.execute(junk as never);
      expect(res).toMatchObject({ ok: false, code: 'COMMAND_INVALID' });
    }
  });
});

describe('command router: execution', () => {
  it('writes a DALI level over Modbus TCP, reads it back and reports it as a reading', async () => {
    const r = router();
    readBacks.length = 0;
    const res = await r.execute(cmd({ value: 127, actor: 'ops@city' }));
    expect(res).toEqual({ id: `t-${seq}`, ok: true, readBack: 127, ts: clock.wallNow() });
    expect(sim.getValue(DALI, 'brightness')).toBe(127);
    expect(readBacks).toEqual([
      expect.objectContaining({
        device: 'dali',
        point: 'brightness',
        value: 127,
        quality: 'good',
        ts: clock.wallNow(),
      }),
    ]);
    const audit = commandEvents().at(-1)!;
    expect(audit.data).toMatchObject({
      id: `t-${seq}`,
      source: 'mqtt',
      actor: 'ops@city',
      device: 'dali',
      point: 'brightness',
      value: 127,
      receivedAt: clock.wallNow(),
      result: { ok: true, readBack: 127 },
    });
  });

  it('switches a relay with on/off words and reads the coil back', async () => {
    const r = router();
    const on = await r.execute(
      cmd({ device: 'relays', point: 'relay_3', value: 'on', source: 'http', actor: 'farmer1' }),
    );
    expect(on).toMatchObject({ ok: true, readBack: 1 });
    expect(sim.getValue(RELAYS, 'relay_3')).toBe(1);
    const off = await r.execute(cmd({ device: 'relays', point: 'relay_3', value: false }));
    expect(off).toMatchObject({ ok: true, readBack: 0 });
    expect(sim.getValue(RELAYS, 'relay_3')).toBe(0);
  });

  it('a command delivered twice runs once; the second gets the first result, marked duplicate', async () => {
    const r = router();
    const req = cmd({ id: 'city-42', value: 200 });
    const first = await r.execute(req);
    expect(first.ok).toBe(true);
    const writes = sim.stats(DALI).writes;
    sim.setValue(DALI, 'brightness', 10); // someone else changed it: a replay must not undo that
    const again = await r.execute({ ...req });
    expect(again).toEqual({ ...first, duplicate: true });
    expect(sim.stats(DALI).writes).toBe(writes);
    expect(sim.getValue(DALI, 'brightness')).toBe(10);
    expect(commandEvents().at(-1)!.data).toMatchObject({ id: 'city-42', result: { duplicate: true } });
  });

  it("ids are scoped by source: a panel command with the city's id does not pre-empt the city's command", async () => {
    const r = router();
    const writes = sim.stats(DALI).writes;
    const panel = await r.execute(cmd({ id: 'city-77', source: 'http', actor: 'farmer1', value: 20 }));
    const city = await r.execute(cmd({ id: 'city-77', source: 'mqtt', value: 180 }));
    expect(panel).toMatchObject({ ok: true, readBack: 20 });
    expect(city).toMatchObject({ ok: true, readBack: 180 });
    expect(city.duplicate).toBeUndefined();
    expect(sim.stats(DALI).writes).toBe(writes + 2);
  });

  it('the same id from the same source with different content is refused as a conflict; the first result stands', async () => {
    const r = router();
    const first = await r.execute(cmd({ id: 'city-78', value: 120 }));
    expect(first.ok).toBe(true);
    const writes = sim.stats(DALI).writes;
    const other = await r.execute(cmd({ id: 'city-78', value: 5 }));
    expect(other).toMatchObject({ id: 'city-78', ok: false, code: 'CONFLICT' });
    expect(sim.stats(DALI).writes).toBe(writes);
    expect(sim.getValue(DALI, 'brightness')).toBe(120);
    expect(commandEvents().at(-1)!.data).toMatchObject({
      id: 'city-78',
      value: 5,
      result: { ok: false, code: 'CONFLICT' },
    });
    // and across a restart, from the ledger
    store.close();
    store = Store.open({ dataDir: dir, clock });
    expect(await router().execute(cmd({ id: 'city-78', value: 6 }))).toMatchObject({ code: 'CONFLICT' });
    expect(await router().execute(cmd({ id: 'city-78', value: 120 }))).toEqual({ ...first, duplicate: true });
  });

  it('two deliveries of one id at the same moment still write once', async () => {
    const r = router();
    const writes = sim.stats(DALI).writes;
    const req = cmd({ id: 'city-43', value: 99 });
    const [a, b] = await Promise.all([r.execute(req), r.execute({ ...req })]);
    expect(sim.stats(DALI).writes).toBe(writes + 1);
    expect([a.duplicate, b.duplicate].filter(Boolean)).toHaveLength(1);
    expect(a.ok && b.ok).toBe(true);
  });

  it('remembers ids across a restart on the same database', async () => {
    const req = cmd({ id: 'city-44', value: 150 });
    const first = await router().execute(req);
    expect(first.ok).toBe(true);
    store.close();
    store = Store.open({ dataDir: dir, clock });
    const writes = sim.stats(DALI).writes;
    const again = await router().execute({ ...req });
    expect(again).toEqual({ ...first, duplicate: true });
    expect(sim.stats(DALI).writes).toBe(writes);
    // refusals are remembered too: a redelivered bad command gets the same answer
    const bad = cmd({ id: 'city-45', value: 999 });
    const refused = await router().execute(bad);
    store.close();
    store = Store.open({ dataDir: dir, clock });
    expect(await router().execute(bad)).toEqual({ ...refused, duplicate: true });
  });

  it('runs one device’s commands in arrival order, each write with its read-back', async () => {
    const r = router();
    const values = [10, 20, 30, 40, 50];
    const results = await Promise.all(values.map((value) => r.execute(cmd({ value }))));
    expect(results.map((x) => x.readBack)).toEqual(values);
    expect(sim.getValue(DALI, 'brightness')).toBe(50);
  });

  it('refuses a command that waited past its deadline instead of running it late', async () => {
    const r = router({ timeoutMs: 5000 });
    const writes = sim.stats(SLOW).writes;
    const first = r.execute(cmd({ device: 'slow-relays', point: 'relay_1', value: true }));
    const late = r.execute(
      cmd({ device: 'slow-relays', point: 'relay_2', value: true, deadline: clock.wallNow() + 1000 }),
    );
    // time passes while the first command occupies the device
    clock.advance(2000);
    expect((await first).ok).toBe(true);
    expect(await late).toMatchObject({ ok: false, code: 'EXPIRED' });
    expect(sim.stats(SLOW).writes).toBe(writes + 1);
  });

  it('gives up after its timeout with DEVICE_ERROR, and refuses BUSY beyond the queue limit', async () => {
    const r = router({ timeoutMs: 300, maxQueuePerDevice: 2 });
    const [a, b, c] = await Promise.all([
      r.execute(cmd({ device: 'slow-relays', point: 'relay_1', value: true })),
      r.execute(cmd({ device: 'slow-relays', point: 'relay_2', value: true })),
      r.execute(cmd({ device: 'slow-relays', point: 'relay_3', value: true })),
    ]);
    expect(a).toMatchObject({ ok: false, code: 'DEVICE_ERROR' });
    expect(a.message).toMatch(/no result from "slow-relays" within 300 ms/);
    expect(b).toMatchObject({ ok: false, code: 'DEVICE_ERROR' });
    expect(c).toMatchObject({ ok: false, code: 'BUSY' });
    // one bus, one request in flight: another device's command waits for the slow answers, then runs
    const ok = await router().execute(cmd({ value: 77 }));
    expect(ok).toMatchObject({ ok: true, readBack: 77 });
  });

  it('reports a device that does not answer as DEVICE_ERROR with the reason', async () => {
    sim.setBehaviour(RELAYS, 'dead');
    try {
      const quick = ModbusBus.tcp({ id: 'quick', host: '127.0.0.1', port: sim.port as number, timeoutMs: 200 });
      await quick.open();
      const relays = devices.get('relays')!;
      const r = new CommandRouter({
        clock,
        devices: new Map([['relays', { ...relays, bus: quick }]]),
      });
      const res = await r.execute(cmd({ device: 'relays', point: 'relay_1', value: true }));
      expect(res).toMatchObject({ ok: false, code: 'DEVICE_ERROR' });
      expect(res.message).toMatch(/timeout|no answer|did not answer/i);
      await quick.close();
    } finally {
      sim.setBehaviour(RELAYS, 'normal');
    }
  });
});
