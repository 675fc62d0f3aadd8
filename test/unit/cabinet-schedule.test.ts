import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ModbusBus } from '../../drivers/modbus/bus.js';
import { Gateway } from '../../gateway/app.js';
import { CabinetController, levelToPoint } from '../../gateway/cabinet/index.js';
import { linkCabinetLoads } from '../../gateway/cabinet/sim-load.js';
import { ManualClock } from '../../gateway/clock/index.js';
import { CommandRouter, type RouterDevice } from '../../gateway/commands/router.js';
import { type GatewayConfig, gatewayConfigSchema } from '../../gateway/config/schema.js';
import type { Reading } from '../../gateway/core/reading.js';
import { createLogger } from '../../gateway/log.js';
import { Store } from '../../gateway/store/index.js';
import { loadProfiles } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { freePort } from '../helpers/ports.js';

/**
 * Reference sun times for Đà Lạt (11.9404 N, 108.4583 E, UTC+7), computed independently of suncalc
 * with NOAA's "General Solar Position Calculations" (NOAA Global Monitoring Laboratory, the
 * equations behind the NOAA Solar Calculator: fractional-year equation of time and declination,
 * zenith 90.833° for refraction and the solar disc):
 *   2026-01-15 sunset  17:39:32   2026-01-16 sunrise 06:10:06
 *   2026-06-21 sunset  18:12:16   2026-06-22 sunrise 05:22:48
 */
const H = 3_600_000;
const MIN = 60_000;
/** Đà Lạt local time (UTC+7, no DST) as an instant */
const local = (y: number, m: number, d: number, hh: number, mm: number, ss = 0) =>
  Date.UTC(y, m - 1, d, hh - 7, mm, ss);
const REF = {
  jan: { sunset: local(2026, 1, 15, 17, 39, 32), sunrise: local(2026, 1, 16, 6, 10, 6) },
  jun: { sunset: local(2026, 6, 21, 18, 12, 16), sunrise: local(2026, 6, 22, 5, 22, 48) },
};
const TOLERANCE = 3 * MIN;

const DALI = 10;
const RELAYS = 11;
const METER = 12;
const profiles = loadProfiles();

function configFor(port: number, dataDir: string, extra: Record<string, unknown> = {}): GatewayConfig {
  return gatewayConfigSchema.parse({
    gateway: { id: 'dl-cab-test', dataDir, assumeClockSynced: true },
    buses: [{ id: 'cabinet', type: 'modbus-tcp', host: '127.0.0.1', port, timeout: '1s' }],
    devices: [
      {
        id: 'dali',
        profile: 'ecodim-dali-gw2',
        bus: 'cabinet',
        unit: DALI,
        interval: '2s',
        points: ['brightness', 'lamp_failure', 'bus_fault'],
      },
      {
        id: 'contactor',
        profile: 'waveshare-modbus-rtu-relay-8ch',
        bus: 'cabinet',
        unit: RELAYS,
        interval: '2s',
        points: ['relay_1'],
      },
      { id: 'meter', profile: 'eastron-sdm120', bus: 'cabinet', unit: METER, interval: '2s', points: ['current'] },
    ],
    cabinets: [
      {
        id: 'street-1',
        dimmer: { device: 'dali' },
        contactor: { device: 'contactor', point: 'relay_1' },
        meter: { device: 'meter' },
        schedule: {
          steps: [
            { at: '23:00', level: 50 },
            { at: '04:30', level: 100 },
          ],
        },
        feeder: { minCurrentA: 0.5, maxCurrentA: 8, settle: '1m' },
      },
    ],
    ...extra,
  });
}

let sim: ModbusSimulator;
const tmpDirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'lb-cab-'));
  tmpDirs.push(d);
  return d;
}

beforeAll(async () => {
  sim = await ModbusSimulator.tcp({
    units: [
      { unit: DALI, profile: profiles.get('ecodim-dali-gw2')! },
      { unit: RELAYS, profile: profiles.get('waveshare-modbus-rtu-relay-8ch')! },
      { unit: METER, profile: profiles.get('eastron-sdm120')! },
    ],
  });
});
afterAll(async () => {
  await sim?.close();
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

/** A cabinet as the gateway builds it, on a real Modbus TCP bus to the simulators. */
class Rig {
  readonly clock: ManualClock;
  readonly bus: ModbusBus;
  store: Store;
  router!: CommandRouter;
  cabinets!: CabinetController;
  readonly config: GatewayConfig;
  readonly devices = new Map<string, RouterDevice>();

  constructor(
    start: number,
    readonly dataDir = tmp(),
  ) {
    this.clock = new ManualClock({ wall: start });
    this.config = configFor(sim.port as number, dataDir);
    this.bus = ModbusBus.tcp({ id: 'cabinet', host: '127.0.0.1', port: sim.port as number, timeoutMs: 1000 });
    this.store = Store.open({ dataDir, clock: this.clock });
    for (const d of this.config.devices) {
      const profile = profiles.get(d.profile)!;
      this.devices.set(d.id, {
        binding: { id: d.id, profile, unit: d.unit },
        bus: this.bus,
        busId: 'cabinet',
        enabled: true,
      });
    }
    linkCabinetLoads(this.config, profiles, () => sim);
    this.build();
  }

  /** router and cabinets anew on the same database: what a restart does */
  build(): void {
    this.router = new CommandRouter({
      clock: this.clock,
      devices: this.devices,
      ledger: this.store.control(),
      audit: this.store,
    });
    this.cabinets = new CabinetController({
      cabinets: this.config.cabinets,
      profileOf: (id) => this.devices.get(id)?.binding.profile,
      site: { ...this.config.gateway.location, timezone: this.config.gateway.timezone },
      clock: this.clock,
      executor: this.router,
      settings: this.store.control(),
      alarms: this.store,
    });
    for (const c of this.cabinets.cabinets) this.router.addTarget(c.id, c);
  }

  async open(): Promise<this> {
    await this.bus.open();
    return this;
  }

  async close(): Promise<void> {
    await this.cabinets.stop();
    this.store.close();
    await this.bus.close();
  }

  /** reads the meter and the DALI status over the bus, as a poll would, and hands them to the cabinet */
  async poll(): Promise<void> {
    const readings: Reading[] = [];
    for (const id of ['meter', 'dali']) {
      const dev = this.devices.get(id)!;
      const cfg = this.config.devices.find((d) => d.id === id)!;
      const points = dev.binding.profile.points.filter((p) => cfg.points!.includes(p.name));
      for (const v of await this.bus.readPoints(dev.binding, points)) {
        readings.push({
          device: id,
          point: v.point,
          value: v.value,
          quality: v.quality,
          ts: this.clock.wallNow(),
          mono: 0,
          bootId: 'b',
          synced: true,
        });
      }
    }
    for (const c of this.cabinets.cabinets) c.onReadings(readings);
  }

  alarms(): Record<string, unknown>[] {
    return this.store
      .eventsAfter(0, 10_000)
      .filter((e) => e.kind === 'alarm')
      .map((e) => e.data);
  }
}

interface Change {
  at: number;
  brightness: number;
  relay: number;
}

function lamps(): { brightness: number; relay: number } {
  return { brightness: sim.getValue(DALI, 'brightness'), relay: sim.getValue(RELAYS, 'relay_1') };
}

/** Moves the clock a minute at a time until `until`, ticking the cabinets; returns every change of the lamps. */
async function run(
  rig: { clock: ManualClock; cabinets: { tick(): Promise<void> } },
  until: number,
  stepMs = MIN,
): Promise<Change[]> {
  const changes: Change[] = [];
  let last = lamps();
  while (rig.clock.wallNow() < until) {
    rig.clock.advance(stepMs);
    await rig.cabinets.tick();
    const now = lamps();
    if (now.brightness !== last.brightness || now.relay !== last.relay)
      changes.push({ at: rig.clock.wallNow(), ...now });
    last = now;
  }
  return changes;
}

const fmt = (ms: number) => new Date(ms + 7 * H).toISOString().slice(11, 16);
const FULL = 254;
const HALF = levelToPoint(50, 'dali', 254);

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) await r.close();
});
async function rig(start: number, dataDir?: string): Promise<Rig> {
  const r = await new Rig(start, dataDir).open();
  rigs.push(r);
  return r;
}

describe('streetlight cabinet: a night at Đà Lạt', () => {
  it('50 % of the light is DALI arc level 229 on the logarithmic curve', () => {
    expect(HALF).toBe(229);
    expect(levelToPoint(100, 'dali', 254)).toBe(254);
    expect(levelToPoint(0, 'dali', 254)).toBe(0);
    expect(levelToPoint(50, 'linear', 254)).toBe(127);
  });

  for (const [season, ref, start] of [
    ['January', REF.jan, local(2026, 1, 15, 12, 0)],
    ['June', REF.jun, local(2026, 6, 21, 12, 0)],
  ] as const) {
    it(`${season}: on at sunset, 50 % at 23:00, 100 % at 04:30, off at sunrise — through the router`, async () => {
      sim.setValue(DALI, 'brightness', 254);
      sim.setValue(RELAYS, 'relay_1', 0);
      const r = await rig(start);
      const changes = await run(r, start + 24 * H);
      const summary = changes.map((c) => `${fmt(c.at)} ${c.relay ? 'on' : 'off'} ${c.brightness}`);
      expect(changes, summary.join('\n')).toHaveLength(5);
      const [first, on, half, full, off] = changes as [Change, Change, Change, Change, Change];
      // day: the first tick puts the lamps in their scheduled state (off)
      expect(first).toMatchObject({ at: start + MIN, relay: 0, brightness: 0 });
      expect(on).toMatchObject({ relay: 1, brightness: FULL });
      expect(Math.abs(on.at - ref.sunset), `on at ${fmt(on.at)}`).toBeLessThanOrEqual(TOLERANCE);
      expect(half).toMatchObject({ at: start + 11 * H, relay: 1, brightness: HALF });
      expect(full).toMatchObject({ at: start + 16 * H + 30 * MIN, relay: 1, brightness: FULL });
      expect(off).toMatchObject({ relay: 0, brightness: 0 });
      expect(Math.abs(off.at - ref.sunrise), `off at ${fmt(off.at)}`).toBeLessThanOrEqual(TOLERANCE);

      // every switching went through the router and is in the audit, as source 'schedule'
      const audit = r.store
        .eventsAfter(0, 1000)
        .filter((e) => e.kind === 'command')
        .map((e) => e.data);
      expect(audit.every((a) => a.source === 'schedule' && a.actor === 'cabinet:street-1')).toBe(true);
      expect(audit.map((a) => `${a.device}.${a.point}=${a.value}`)).toEqual([
        'dali.brightness=0',
        'contactor.relay_1=false',
        'contactor.relay_1=true',
        `dali.brightness=${FULL}`,
        `dali.brightness=${HALF}`,
        `dali.brightness=${FULL}`,
        'dali.brightness=0',
        'contactor.relay_1=false',
      ]);
      expect(audit.every((a) => (a.result as { ok: boolean }).ok)).toBe(true);
    });
  }

  it('a gateway whose broker is down all night switches exactly the same (schedule runs from its own clock)', async () => {
    const start = local(2026, 1, 15, 12, 0);
    sim.setValue(DALI, 'brightness', 254);
    sim.setValue(RELAYS, 'relay_1', 0);
    const deadPort = await freePort(); // nothing listens here: the broker is down the whole night
    const clock = new ManualClock({ wall: start });
    const config = configFor(sim.port as number, tmp(), { sync: { url: `mqtt://127.0.0.1:${deadPort}` } });
    const gw = await Gateway.start(config, { log: createLogger({ level: 'silent' }), clock, http: false });
    try {
      expect(gw.cabinets).not.toBeNull();
      await gw.cabinets!.stop(); // the start switched to the day state; now the test drives the clock
      expect(lamps()).toEqual({ relay: 0, brightness: 0 });
      const changes = await run({ clock, cabinets: gw.cabinets! }, start + 24 * H);
      expect(changes.map((c) => [c.relay, c.brightness])).toEqual([
        [1, FULL],
        [1, HALF],
        [1, FULL],
        [0, 0],
      ]);
      expect(Math.abs(changes[0]!.at - REF.jan.sunset)).toBeLessThanOrEqual(TOLERANCE);
      expect(changes[1]!.at).toBe(local(2026, 1, 15, 23, 0));
      expect(Math.abs(changes[3]!.at - REF.jan.sunrise)).toBeLessThanOrEqual(TOLERANCE);
      // and it kept polling meanwhile
      gw.store.flush();
      expect(gw.store.stats().readings).toBeGreaterThan(0);
    } finally {
      await gw.stop();
    }
  });
});

describe('streetlight cabinet: overrides and replaced schedules', () => {
  it('a manual override holds until it expires, then the schedule takes over again', async () => {
    const start = local(2026, 1, 15, 19, 0);
    const r = await rig(start);
    await r.cabinets.tick();
    expect(lamps()).toEqual({ relay: 1, brightness: FULL });
    const res = await r.router.execute({
      id: 'ovr-1',
      source: 'http',
      actor: 'technician',
      device: 'street-1',
      point: 'override',
      value: { level: 20, for: '1h' },
    } as never);
    expect(res).toMatchObject({ ok: true, readBack: 20 });
    expect(res.message).toMatch(/lamps at 20 % until 2026-01-15T13:00:00.000Z/);
    expect(lamps()).toEqual({ relay: 1, brightness: levelToPoint(20, 'dali', 254) });
    expect(r.cabinets.status()[0]).toMatchObject({ mode: 'override', desired: 20 });

    const changes = await run(r, local(2026, 1, 15, 22, 0));
    expect(changes).toEqual([{ at: local(2026, 1, 15, 20, 0), relay: 1, brightness: FULL }]);
    expect(r.cabinets.status()[0]).toMatchObject({ mode: 'schedule', override: null });
  });

  it('an override without an end lasts until the next switch; it survives a restart', async () => {
    const start = local(2026, 1, 15, 19, 0);
    const r = await rig(start);
    await r.cabinets.tick();
    const res = await r.router.execute({
      id: 'ovr-2',
      source: 'mqtt',
      device: 'street-1',
      point: 'override',
      value: 'off',
    });
    expect(res.ok, res.message).toBe(true);
    expect(lamps()).toEqual({ relay: 0, brightness: 0 });
    // restart: the override comes back from the database
    await r.cabinets.stop();
    r.build();
    const changes = await run(r, local(2026, 1, 16, 19, 0), 5 * MIN);
    // off all night (the override ends at sunrise, when the schedule says off anyway), on at the next sunset
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ relay: 1, brightness: FULL });
    expect(Math.abs(changes[0]!.at - local(2026, 1, 16, 17, 40))).toBeLessThanOrEqual(TOLERANCE + 5 * MIN);
  });

  it('refuses bad overrides with a reason', async () => {
    const r = await rig(local(2026, 1, 15, 19, 0));
    const bad = async (value: unknown) =>
      r.router.execute({
        id: `bad-${Math.random()}`,
        source: 'http',
        device: 'street-1',
        point: 'override',
        value: value as never,
      });
    expect(await bad(150)).toMatchObject({ ok: false, code: 'OUT_OF_RANGE' });
    expect(await bad({ level: 50, for: '30d' })).toMatchObject({ ok: false, code: 'OUT_OF_RANGE' });
    expect(await bad({ level: 50, until: '2020-01-01T00:00:00Z' })).toMatchObject({
      ok: false,
      code: 'COMMAND_INVALID',
    });
    expect(await bad({ level: 50, colour: 'red' })).toMatchObject({ ok: false, code: 'COMMAND_INVALID' });
    expect(await bad('dim')).toMatchObject({ ok: false, code: 'COMMAND_INVALID' });
    const wrongPoint = await r.router.execute({
      id: 'bad-p',
      source: 'http',
      device: 'street-1',
      point: 'brightness',
      value: 3,
    });
    expect(wrongPoint).toMatchObject({ ok: false, code: 'UNKNOWN_POINT' });
  });

  it('the city replaces the schedule with a command; it is stored and outlives a restart', async () => {
    const start = local(2026, 1, 15, 12, 0);
    const r = await rig(start);
    await r.cabinets.tick();
    const schedule = { on: '18:30', off: '05:00', steps: [{ at: '21:00', level: 30 }] };
    // over MQTT the value is the schedule's JSON text (the cmd envelope carries scalar values)
    const res = await r.router.execute({
      id: 'sch-1',
      source: 'mqtt',
      actor: 'city',
      device: 'street-1',
      point: 'schedule',
      value: JSON.stringify(schedule),
    });
    expect(res.ok, res.message).toBe(true);
    expect(res.message).toMatch(/schedule replaced; next switch at 2026-01-15T11:30:00.000Z/);

    await r.cabinets.stop();
    r.build(); // a restart: the replaced schedule comes from SQLite, not the config
    expect(r.cabinets.status()[0]!.schedule).toMatchObject({ ...schedule, source: 'command' });
    const changes = await run(r, start + 24 * H);
    expect(changes).toEqual([
      { at: local(2026, 1, 15, 18, 30), relay: 1, brightness: FULL },
      { at: local(2026, 1, 15, 21, 0), relay: 1, brightness: levelToPoint(30, 'dali', 254) },
      { at: local(2026, 1, 16, 5, 0), relay: 0, brightness: 0 },
    ]);

    // a bad schedule is refused with the key at fault, and changes nothing
    const bad = await r.router.execute({
      id: 'sch-2',
      source: 'mqtt',
      device: 'street-1',
      point: 'schedule',
      value: '{"on":"dusk"}',
    });
    expect(bad).toMatchObject({ ok: false, code: 'COMMAND_INVALID' });
    expect(bad.message).toMatch(/schedule\.on: "dusk" is not a schedule time/);
    expect(r.cabinets.status()[0]!.schedule.on).toBe('18:30');

    // null goes back to the config's schedule
    const back = await r.router.execute({
      id: 'sch-3',
      source: 'mqtt',
      device: 'street-1',
      point: 'schedule',
      value: 'config',
    });
    expect(back.ok).toBe(true);
    expect(r.cabinets.status()[0]!.schedule).toMatchObject({ on: 'sunset', off: 'sunrise', source: 'config' });
  });
});

describe('streetlight cabinet: faults', () => {
  it('no current on a lit feeder, DALI lamp failure, and current while off raise alarms, and clear', async () => {
    const start = local(2026, 1, 15, 19, 0);
    const r = await rig(start);
    linkCabinetLoads(r.config, profiles, () => sim);
    await r.cabinets.tick();
    expect(lamps()).toEqual({ relay: 1, brightness: FULL });
    // within the settle time the meter is not judged
    sim.setValue(METER, 'current', 0);
    await r.poll();
    expect(r.alarms()).toEqual([]);
    r.clock.advance(2 * MIN);
    await r.poll();
    expect(r.alarms()).toEqual([
      expect.objectContaining({
        cabinet: 'street-1',
        alarm: 'feeder_no_current',
        state: 'raised',
        value: 0,
        level: 100,
      }),
    ]);
    await r.poll(); // still broken: no second alarm
    expect(r.alarms()).toHaveLength(1);
    linkCabinetLoads(r.config, profiles, () => sim); // feeder repaired: current follows the lamps again
    await r.poll();
    expect(r.alarms().at(-1)).toMatchObject({ alarm: 'feeder_no_current', state: 'cleared' });

    sim.setValue(DALI, 'lamp_failure', 1);
    await r.poll();
    expect(r.alarms().at(-1)).toMatchObject({
      alarm: 'lamp_failure',
      state: 'raised',
      device: 'dali',
      point: 'lamp_failure',
      value: 1,
    });
    sim.setValue(DALI, 'lamp_failure', 0);
    await r.poll();
    expect(r.alarms().at(-1)).toMatchObject({ alarm: 'lamp_failure', state: 'cleared' });

    // sunrise: lamps off; then a stuck contactor keeps the feeder live
    await run(r, local(2026, 1, 16, 7, 0), 10 * MIN);
    expect(lamps()).toEqual({ relay: 0, brightness: 0 });
    r.clock.advance(2 * MIN);
    await r.poll();
    expect(r.alarms().filter((a) => a.state === 'raised')).toHaveLength(2);
    sim.setValue(RELAYS, 'relay_1', 1);
    sim.setValue(DALI, 'brightness', 254);
    await r.poll();
    expect(r.alarms().at(-1)).toMatchObject({ alarm: 'feeder_current_while_off', state: 'raised' });
    expect(r.alarms().at(-1)!.value as number).toBeGreaterThan(0.5);
  });
});
