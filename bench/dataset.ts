import type { DeviceProfile, PointDef } from '../gateway/core/point.js';
import type { Reading } from '../gateway/core/reading.js';
import { loadProfiles } from '../hardware/profiles.js';
import { SimulatedUnit } from '../hardware/simulators/sim-unit.js';
import { lcg } from './common.js';

/**
 * Realistic sites for the benchmarks: the greenhouse and the streetlight cabinet of the test
 * fixtures (same devices, points and intervals), and a traffic junction of loop detectors. Values
 * come from the simulators' own value models through the register codec, so they carry the
 * resolution a real device reports (23.4 °C, not 23.4123).
 */
export interface SiteDevice {
  id: string;
  profile: DeviceProfile;
  points: PointDef[];
  intervalMs: number;
  /** value of each point at wall time t (ms) */
  values(t: number): (number | string | null)[];
}

export interface Site {
  gatewayId: string;
  devices: SiteDevice[];
}

interface DeviceSpec {
  id: string;
  profile: string;
  unit: number;
  intervalMs: number;
  points?: string[];
}

const GREENHOUSE: DeviceSpec[] = [
  { id: 'soil-a1', profile: 'comwintop-cwt-soil', unit: 1, intervalMs: 30_000 },
  { id: 'soil-a2', profile: 'comwintop-cwt-soil', unit: 2, intervalMs: 30_000 },
  {
    id: 'soil-b1',
    profile: 'comwintop-cwt-soil',
    unit: 3,
    intervalMs: 30_000,
    points: ['moisture', 'temperature', 'ec'],
  },
  { id: 'climate-1', profile: 'xy-md02', unit: 1, intervalMs: 60_000, points: ['temperature', 'humidity'] },
  { id: 'valves', profile: 'waveshare-modbus-rtu-relay-8ch', unit: 2, intervalMs: 10_000 },
];

const CABINET: DeviceSpec[] = [
  { id: 'meter', profile: 'eastron-sdm630', unit: 1, intervalMs: 60_000 },
  {
    id: 'dali',
    profile: 'ecodim-dali-gw2',
    unit: 2,
    intervalMs: 30_000,
    points: ['brightness', 'lamps_on', 'lamp_failure'],
  },
  {
    id: 'contactors',
    profile: 'waveshare-modbus-rtu-relay-8ch',
    unit: 3,
    intervalMs: 15_000,
    points: ['relay_1', 'relay_2'],
  },
  { id: 'loop-n1', profile: 'loop-detector', unit: 0, intervalMs: 60_000 },
  { id: 'loop-s1', profile: 'loop-detector', unit: 0, intervalMs: 60_000 },
];

/** A four-arm junction: one loop pair (speed) per approach, counted every minute. */
const TRAFFIC: DeviceSpec[] = ['n', 's', 'e', 'w'].map((arm, i) => ({
  id: `loop-${arm}`,
  profile: 'loop-detector',
  unit: i,
  intervalMs: 60_000,
}));

let profileCache: Map<string, DeviceProfile> | null = null;
function profiles(): Map<string, DeviceProfile> {
  profileCache ??= loadProfiles();
  return profileCache;
}

export function realisticSites(): Site[] {
  return [
    { gatewayId: 'dl-gw-0001', devices: GREENHOUSE.map(build) },
    { gatewayId: 'dl-cab-0107', devices: CABINET.map(build) },
    { gatewayId: 'dl-trf-0003', devices: TRAFFIC.map(build) },
  ];
}

function build(spec: DeviceSpec): SiteDevice {
  const profile = profiles().get(spec.profile);
  if (!profile) throw new Error(`benchmark dataset: profile ${spec.profile} is not shipped`);
  const points = spec.points ? profile.points.filter((p) => spec.points!.includes(p.name)) : profile.points;
  if (profile.kind === 'modbus') {
    let now = 0;
    const unit = new SimulatedUnit({ unit: spec.unit, profile, seed: spec.unit }, () => now);
    // getValue refreshes every model of the unit: remember the last poll's values
    let last: { t: number; values: (number | string | null)[] } | null = null;
    return {
      id: spec.id,
      profile,
      points,
      intervalMs: spec.intervalMs,
      values: (t) => {
        if (last?.t === t) return last.values;
        now = t;
        last = { t, values: points.map((p) => unit.getValue(p.name)) };
        return last.values;
      },
    };
  }
  // GPIO loop detectors have no Modbus simulator: the same daily traffic curve the cabinet sees.
  const rand = lcg(1000 + spec.unit);
  return {
    id: spec.id,
    profile,
    points,
    intervalMs: spec.intervalMs,
    values: (t) => {
      const perMin = trafficPerMinute(t);
      const count = Math.max(0, Math.round(perMin * (0.7 + 0.6 * rand())));
      const occupancy = Math.min(1, Math.round(count * 0.011 * (0.8 + 0.4 * rand()) * 1000) / 1000);
      const speed = count === 0 ? null : Math.round((38 - perMin * 0.2 + 8 * rand()) * 10) / 10;
      return points.map((p) => (p.name === 'intensity' ? count : p.name === 'occupancy' ? occupancy : speed));
    },
  };
}

/** Vehicles per minute per lane in Đà Lạt: quiet at night, peaks at 07:00 and 17:30. */
function trafficPerMinute(t: number): number {
  const h = (((t / 3_600_000 + 7) % 24) + 24) % 24;
  const peak = (c: number, w: number) => Math.exp(-((h - c) ** 2) / (2 * w * w));
  return 1 + 14 * peak(7, 1.2) + 16 * peak(17.5, 1.5) + 6 * peak(12, 3);
}

export interface Poll {
  /** wall ms the poll finished */
  t: number;
  device: SiteDevice;
  readings: Reading[];
}

/**
 * Every poll of a site over [start, start + duration), in time order, as the scheduler makes them:
 * each device on its own interval, first polls spread over 250 ms.
 */
export function* pollsOf(site: Site, startMs: number, durationMs: number, bootId = 'bench-boot'): Generator<Poll> {
  const n = site.devices.length;
  const next = site.devices.map((_, i) => startMs + Math.floor((250 * i) / Math.max(1, n)));
  const end = startMs + durationMs;
  for (;;) {
    let k = 0;
    for (let i = 1; i < n; i++) if (next[i]! < next[k]!) k = i;
    const t = next[k]!;
    if (t >= end) return;
    const d = site.devices[k]!;
    next[k] = t + d.intervalMs;
    const values = d.values(t);
    const readings: Reading[] = d.points.map((p, i) => {
      const r: Reading = {
        device: d.id,
        point: p.name,
        value: values[i] ?? null,
        quality: 'good',
        ts: t,
        mono: t - startMs,
        bootId,
        synced: true,
      };
      if (p.unit) r.unit = p.unit;
      return r;
    });
    yield { t, device: d, readings };
  }
}
