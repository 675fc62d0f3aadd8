import { describe, expect, it } from 'vitest';
import { formatProblems, parseConfigText } from '../../gateway/config/index.js';
import { loadProfiles } from '../../hardware/profiles.js';

const profiles = loadProfiles();
const base = (groups: string) => `gateway: { id: dl-cab-0001, dataDir: /tmp/x }
buses: [{ id: rs485-1, type: modbus-rtu, port: /dev/ttyUSB0 }]
devices:
  - { id: dali, profile: ecodim-dali-gw2, bus: rs485-1, unit: 1, interval: 30s, groupIntervals: ${groups} }
`;

describe('devices.N.groupIntervals', () => {
  it('parses poll-group intervals to ms', () => {
    const r = parseConfigText(base('{ info: 1h, levels: 5m }'), { profiles });
    expect(r.ok, r.ok ? '' : formatProblems(r.problems)).toBe(true);
    if (r.ok) expect(r.config.devices[0]!.groupIntervals).toEqual({ info: 3_600_000, levels: 300_000 });
  });

  it('names an unknown group with the key path and the groups the profile has', () => {
    const r = parseConfigText(base('{ lampz: 5m }'), { profiles });
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(formatProblems(r.problems)).toMatch(
        /^devices\.0\.groupIntervals\.lampz: profile ecodim-dali-gw2 has no poll group "lampz" \(groups: .*levels.*did you mean lamps/m,
      );
  });

  it('refuses a bad duration', () => {
    const r = parseConfigText(base('{ info: soon }'), { profiles });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(formatProblems(r.problems)).toMatch(/devices\.0\.groupIntervals\.info: "soon" is not a duration/);
  });
});
