import { describe, expect, it } from 'vitest';
import { AlarmRuleState } from '../../gateway/alarms/rule-state.js';
import { parseConfigText } from '../../gateway/config/index.js';
import type { AlarmRuleConfig } from '../../gateway/config/schema.js';

const S = 1000;
const M = 60 * S;

function rule(over: Partial<AlarmRuleConfig>): AlarmRuleConfig {
  return {
    id: 'flood',
    device: 'level-1',
    point: 'water_level',
    hysteresis: 0,
    for: 0,
    silentAfter: 2 * M,
    severity: 'critical',
    actions: [],
    ...over,
  } as AlarmRuleConfig;
}

const good = (ts: number, value: number) => ({ ts, value, quality: 'good' as const });

describe('alarm rule state', () => {
  it('threshold with minimum duration and hysteresis: no flapping at the line', () => {
    const s = new AlarmRuleState(rule({ above: 30, hysteresis: 5, for: 30 * S }), undefined, 0);
    expect(s.observe(good(1 * S, 31))).toEqual([]); // past the line, not yet for 30 s
    expect(s.snapshot.pending).toBe(true);
    expect(s.observe(good(10 * S, 29))).toEqual([]); // a wave: back under, the count restarts
    expect(s.snapshot.pending).toBe(false);
    expect(s.observe(good(20 * S, 32))).toEqual([]);
    expect(s.tick(49 * S)).toEqual([]);
    expect(s.tick(50 * S)).toEqual(['raised']); // held 30 s: raised by the passing of time
    expect(s.snapshot).toMatchObject({ active: true, since: 50 * S });
    expect(s.observe(good(60 * S, 27))).toEqual([]); // under the line but not by the hysteresis
    expect(s.observe(good(70 * S, 30))).toEqual([]);
    expect(s.observe(good(80 * S, 25))).toEqual(['cleared']); // 30 − 5
    expect(s.snapshot.active).toBe(false);
  });

  it('below, with hysteresis upward', () => {
    const s = new AlarmRuleState(rule({ below: 10, hysteresis: 2 }), undefined, 0);
    expect(s.observe(good(1, 9))).toEqual(['raised']);
    expect(s.observe(good(2, 11))).toEqual([]);
    expect(s.observe(good(3, 12))).toEqual(['cleared']);
  });

  it('rate of rise: 10 cm within 10 minutes, against the lowest value in the window', () => {
    const s = new AlarmRuleState(rule({ rise: { by: 10, within: 10 * M }, hysteresis: 2 }), undefined, 0);
    expect(s.observe(good(0, 20))).toEqual([]);
    expect(s.observe(good(4 * M, 18))).toEqual([]);
    expect(s.observe(good(8 * M, 27))).toEqual([]); // +9 from 18
    expect(s.observe(good(9 * M, 28))).toEqual(['raised']); // +10 from 18
    // the 18 leaves the window at 14 min: rise measured from 27 → 28.5 is 1.5 < 10 − 2
    expect(s.observe(good(13 * M, 28))).toEqual([]);
    expect(s.observe(good(15 * M, 28.5))).toEqual(['cleared']);
  });

  it('a silent sensor raises a fault, never an all-clear; only good readings clear the alarm', () => {
    const s = new AlarmRuleState(rule({ above: 30, hysteresis: 5 }), undefined, 0);
    expect(s.observe(good(10 * S, 40))).toEqual(['raised']);
    // timeouts are not readings of the water: nothing changes
    expect(s.observe({ ts: 20 * S, value: null, quality: 'timeout' })).toEqual([]);
    expect(s.tick(10 * S + 2 * M - 1)).toEqual([]);
    expect(s.tick(10 * S + 2 * M)).toEqual(['fault']);
    expect(s.snapshot).toMatchObject({ active: true, fault: true });
    expect(s.tick(10 * S + 10 * M)).toEqual([]); // one fault, not one per tick
    // the sensor is back and the water is still high: fault over, alarm stays
    expect(s.observe(good(11 * M, 33))).toEqual(['fault_cleared']);
    expect(s.snapshot).toMatchObject({ active: true, fault: false });
    expect(s.observe(good(12 * M, 24))).toEqual(['cleared']);
  });

  it('a sensor that never speaks after start gets silentAfter, then a fault', () => {
    const s = new AlarmRuleState(rule({ above: 30 }), undefined, 1000);
    expect(s.tick(1000 + 2 * M - 1)).toEqual([]);
    expect(s.tick(1000 + 2 * M)).toEqual(['fault']);
  });

  it('restored active state survives: still active, cleared only past the hysteresis', () => {
    const s = new AlarmRuleState(rule({ above: 30, hysteresis: 5 }), { active: true, since: 5, fault: false }, 100);
    expect(s.snapshot).toMatchObject({ active: true, since: 5 });
    expect(s.observe(good(200, 28))).toEqual([]);
    expect(s.observe(good(300, 24.9))).toEqual(['cleared']);
  });
});

describe('alarms: config', () => {
  const head = `gateway: { id: gw-1 }
buses: [{ id: b, type: modbus-tcp, host: 127.0.0.1 }]
devices:
  - { id: level-1, profile: rs485-level-transmitter, bus: b, unit: 1 }
  - { id: siren-1, profile: waveshare-modbus-rtu-relay-8ch, bus: b, unit: 2 }
alarms:
`;
  const problems = (alarms: string) => {
    const r = parseConfigText(head + alarms, { checkFiles: false });
    return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
  };

  it('takes a flood rule with its defaults in ms', () => {
    const r = parseConfigText(
      `${head}  - { id: flood, device: level-1, point: water_level, above: 30, hysteresis: 5, for: 30s, rise: { by: 10, within: 10m }, actions: [{ device: siren-1, point: relay_1 }] }\n`,
      { checkFiles: false },
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.alarms[0]).toMatchObject({
      for: 30_000,
      silentAfter: 120_000,
      severity: 'critical',
      rise: { by: 10, within: 600_000 },
      actions: [{ device: 'siren-1', point: 'relay_1', value: 1, clearValue: 0, onFault: false }],
    });
  });

  it('names the key path of what is wrong', () => {
    expect(problems('  - { id: a, device: level-1, point: water_level }\n')).toEqual([
      'alarms.0: needs a condition: above, below or rise',
    ]);
    expect(problems('  - { id: a, device: levle-1, point: water_level, above: 1 }\n')).toEqual([
      'alarms.0.device: unknown device "levle-1" (did you mean level-1?)',
    ]);
    expect(
      problems(
        '  - { id: a, device: level-1, point: water_level, above: 1, actions: [{ device: level-1, point: water_level }] }\n',
      ),
    ).toEqual(['alarms.0.actions.0.point: point "water_level" of level-1 is read-only']);
    expect(problems('  - { id: a, device: level-1, point: water_level, above: 1, below: 0 }\n')).toEqual([
      'alarms.0.below: give above or below, not both (make two alarms)',
    ]);
  });
});
