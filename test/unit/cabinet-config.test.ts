import { describe, expect, it } from 'vitest';
import { formatProblems, parseConfigText } from '../../gateway/config/index.js';
import { loadProfiles } from '../../hardware/profiles.js';

const profiles = loadProfiles();
const BASE = `gateway: { id: gw-1 }
buses:
  - { id: cab, type: modbus-tcp, host: 127.0.0.1 }
devices:
  - { id: dali, profile: ecodim-dali-gw2, bus: cab, unit: 1 }
  - { id: relays, profile: waveshare-modbus-rtu-relay-8ch, bus: cab, unit: 2 }
  - { id: meter, profile: eastron-sdm120, bus: cab, unit: 3 }
cabinets:
`;

function problems(cabinets: string): string {
  const r = parseConfigText(BASE + cabinets, { file: 'c.yaml', profiles });
  return r.ok ? '(valid)' : formatProblems(r.problems);
}

describe('config: cabinets', () => {
  it('fills the defaults: sunset to sunrise at 100 %, DALI curve, feeder settle 2m', () => {
    const r = parseConfigText(`${BASE}  - { id: street-1, dimmer: { device: dali } }\n`, { profiles });
    if (!r.ok) throw new Error(formatProblems(r.problems));
    expect(r.config.cabinets).toEqual([
      {
        id: 'street-1',
        dimmer: { device: 'dali', point: 'brightness', curve: 'dali' },
        schedule: { on: 'sunset', off: 'sunrise', level: 100, steps: [] },
        feeder: { offMaxCurrentA: 0.5, settle: 120_000 },
      },
    ]);
  });

  it('names the key at fault for bad references and times', () => {
    expect(problems('  - { id: s, dimmer: { device: dalli } }\n')).toMatch(
      /cabinets\.0\.dimmer\.device: unknown device "dalli" \(did you mean dali\?\)/,
    );
    expect(problems('  - { id: s, dimmer: { device: dali, point: lamp_3 } }\n')).toMatch(
      /cabinets\.0\.dimmer\.point: point "lamp_3" of ecodim-dali-gw2 is read-only/,
    );
    expect(
      problems('  - { id: s, dimmer: { device: dali }, contactor: { device: relays, point: relay_9 } }\n'),
    ).toMatch(/cabinets\.0\.contactor\.point: profile waveshare-modbus-rtu-relay-8ch has no point "relay_9"/);
    expect(problems('  - { id: s, dimmer: { device: dali }, schedule: { on: dusk } }\n')).toMatch(
      /cabinets\.0\.schedule\.on: "dusk" is not a schedule time/,
    );
    expect(
      problems('  - { id: s, dimmer: { device: dali }, schedule: { steps: [{ at: "25:00", level: 50 }] } }\n'),
    ).toMatch(/cabinets\.0\.schedule\.steps\.0\.at/);
    expect(problems('  - { id: s, dimmer: { device: dali }, schedule: { off: sunrise+9h } }\n')).toMatch(/within 6h/);
    expect(problems('  - { id: dali, dimmer: { device: dali } }\n')).toMatch(
      /cabinets\.0\.id: "dali" is already a device id/,
    );
    expect(problems('  - { id: s, dimmer: { device: dali }, feeder: { minCurrentA: 1 } }\n')).toMatch(
      /cabinets\.0\.feeder: current limits need a meter/,
    );
  });

  it('accepts the demo-like cabinet', () => {
    expect(
      problems(
        '  - { id: s, dimmer: { device: dali }, contactor: { device: relays, point: relay_1 }, meter: { device: meter }, schedule: { on: sunset+10m, off: "05:30", steps: [{ at: "23:00", level: 50 }] }, feeder: { minCurrentA: 0.5, maxCurrentA: 8 } }\n',
      ),
    ).toBe('(valid)');
  });
});
