import type { GatewayConfig } from '../config/index.js';
import type { DeviceProfile } from '../core/point.js';
import { type DimCurve, pointToFraction } from './levels.js';

interface SimLike {
  getValue(unit: number, point: string): number;
  setModel(unit: number, point: string, model: (wallMs: number) => number): void;
}

const MAINS_V = 230;
const POWER_FACTOR = 0.95;
/** the meter's own draw and the cabinet electronics while the lamps are off */
const STANDBY_A = 0.05;
/** LED drivers draw a floor even when dimmed far down */
const DIMMED_FLOOR = 0.1;

/**
 * Wires the simulated cabinet meter to the simulated lamps: its current follows the contactor and
 * the DALI level, so the feeder check in the demo and the tests sees a real relation (lamps on →
 * current; contactor off → almost none). Returns the cabinets that were linked.
 */
export function linkCabinetLoads(
  config: GatewayConfig,
  profiles: ReadonlyMap<string, DeviceProfile>,
  simOfBus: (busId: string) => SimLike | undefined,
): string[] {
  const devices = new Map(config.devices.map((d) => [d.id, d]));
  const at = (ref: { device: string; point: string } | undefined) => {
    const dev = ref && devices.get(ref.device);
    const sim = dev && dev.unit !== undefined ? simOfBus(dev.bus) : undefined;
    return dev && sim ? { sim, unit: dev.unit!, point: ref!.point, profile: profiles.get(dev.profile) } : undefined;
  };
  const linked: string[] = [];
  for (const cab of config.cabinets) {
    const meter = at(cab.meter);
    const dimmer = at(cab.dimmer);
    if (!meter || !dimmer) continue;
    const contactor = at(cab.contactor);
    const max = dimmer.profile?.points.find((p) => p.name === dimmer.point)?.max ?? 254;
    const nominalA = cab.feeder.maxCurrentA !== undefined ? cab.feeder.maxCurrentA * 0.6 : 4;
    const current = () => {
      const powered = contactor ? contactor.sim.getValue(contactor.unit, contactor.point) === 1 : true;
      const light = pointToFraction(dimmer.sim.getValue(dimmer.unit, dimmer.point), cab.dimmer.curve as DimCurve, max);
      return powered && light > 0 ? STANDBY_A + nominalA * (DIMMED_FLOOR + (1 - DIMMED_FLOOR) * light) : STANDBY_A;
    };
    const meterPoints = new Set(meter.profile?.points.map((p) => p.name) ?? []);
    const drive = (point: string, f: () => number) => {
      if (meterPoints.has(point)) meter.sim.setModel(meter.unit, point, f);
    };
    drive(meter.point, current);
    if (meter.point === 'current') {
      drive('active_power', () => MAINS_V * current() * POWER_FACTOR);
      drive('apparent_power', () => MAINS_V * current());
      drive('power_factor', () => POWER_FACTOR);
    }
    linked.push(cab.id);
  }
  return linked;
}
