import { describe, expect, it } from 'vitest';
import type { GatewayConfig } from '../../gateway/config/index.js';
import { keyValuesSummary } from '../../gateway/summary.js';
import { loadProfile } from '../../hardware/profiles.js';

const profiles = new Map(
  ['comwintop-cwt-soil', 'xy-md02', 'waveshare-modbus-rtu-relay-8ch'].map((n) => [n, loadProfile(n)]),
);
const dev = (id: string, profile: string, extra: Partial<GatewayConfig['devices'][number]> = {}) =>
  ({ id, profile, bus: 'b', unit: 1, interval: 1000, enabled: true, ...extra }) as GatewayConfig['devices'][number];
const r = (device: string, point: string, value: unknown, unit?: string, quality = 'good') => ({
  device,
  point,
  value,
  quality,
  ...(unit ? { unit } : {}),
});

describe('the summary line: each device’s key values', () => {
  it('in config order, each device’s measured points in its profile’s order (not alphabetical)', () => {
    const line = keyValuesSummary(
      {
        devices: [
          dev('soil-a1', 'comwintop-cwt-soil'),
          dev('climate-1', 'xy-md02'),
          dev('valves', 'waveshare-modbus-rtu-relay-8ch'),
        ],
      },
      profiles,
      [
        r('climate-1', 'humidity', 65.83, '%RH'),
        r('climate-1', 'temperature', 25.7, '°C'),
        r('climate-1', 'temperature_correction', 0, '°C'),
        r('soil-a1', 'ec', 1073, 'µS/cm'),
        r('soil-a1', 'moisture', 31.9, '%'),
        r('soil-a1', 'ph', 6.5),
        r('soil-a1', 'temperature', null, '°C', 'timeout'),
        r('valves', 'relay_1', 0),
      ],
    );
    expect(line).toBe(
      'soil-a1 moisture=31.9 % temperature=timeout ec=1073 µS/cm | climate-1 temperature=25.7 °C humidity=65.83 %RH | valves relay_1=0',
    );
  });

  it('says when a device has no reading yet, leaves disabled ones out, and counts what does not fit', () => {
    const devices = [
      dev('off', 'xy-md02', { enabled: false }),
      ...Array.from({ length: 14 }, (_, i) => dev(`c${i}`, 'xy-md02')),
    ];
    const line = keyValuesSummary({ devices }, profiles, [], 3, 12);
    expect(line.startsWith('c0 (no reading yet) | c1 (no reading yet)')).toBe(true);
    expect(line).not.toContain('off');
    expect(line.endsWith('c11 (no reading yet) | (+2 more devices: langbiang status, the console)')).toBe(true);
  });
});
