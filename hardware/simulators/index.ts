import { ModbusSimulator } from './modbus-simulator.js';
import type { SimUnitSpec } from './sim-unit.js';

export { ModbusSimulator, type SimSerialOptions, type SimTcpOptions } from './modbus-simulator.js';
export type { SimBehaviour, SimUnitSpec, SimUnitStats } from './sim-unit.js';
export { dalatAirTemperature, humidityFor, soilMoisture } from './value-models.js';

export type SimBusSpec =
  | { type: 'modbus-tcp'; host?: string; port: number }
  | { type: 'modbus-rtu'; path: string; baudRate?: number; parity?: 'none' | 'even' | 'odd'; stopBits?: 1 | 2 };

export interface SimBusDevices {
  /** the config's bus id, for messages and lookup */
  id: string;
  bus: SimBusSpec;
  units: SimUnitSpec[];
}

export interface SimulatorGroup {
  simulators: { id: string; simulator: ModbusSimulator }[];
  get(id: string): ModbusSimulator | undefined;
  close(): Promise<void>;
}

/**
 * One simulator per bus of a config-like description (what `langbiang simulate` and the demo
 * start). If any bus fails to start, the ones already started are closed before rethrowing.
 */
export async function startSimulatorsForBuses(
  buses: SimBusDevices[],
  opts: { clock?: () => number } = {},
): Promise<SimulatorGroup> {
  const started: { id: string; simulator: ModbusSimulator }[] = [];
  const closeAll = async () => {
    await Promise.all(started.map((s) => s.simulator.close()));
  };
  try {
    for (const b of buses) {
      const simulator =
        b.bus.type === 'modbus-tcp'
          ? await ModbusSimulator.tcp({
              host: b.bus.host ?? '127.0.0.1',
              port: b.bus.port,
              units: b.units,
              clock: opts.clock,
            })
          : await ModbusSimulator.serial({
              path: b.bus.path,
              baudRate: b.bus.baudRate,
              parity: b.bus.parity,
              stopBits: b.bus.stopBits,
              units: b.units,
              clock: opts.clock,
            });
      started.push({ id: b.id, simulator });
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  return {
    simulators: started,
    get: (id) => started.find((s) => s.id === id)?.simulator,
    close: closeAll,
  };
}
