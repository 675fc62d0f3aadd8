import type { BusSpec } from './cli/bus-spec.js';
import type { BusDriver } from './core/driver.js';
import { LangbiangError } from './core/errors.js';

/** The bus part of a config, as the factory needs it (config durations are already ms). */
export type BusSettings =
  | {
      id: string;
      type: 'modbus-rtu';
      port: string;
      baudRate: number;
      parity: 'none' | 'even' | 'odd';
      stopBits: 1 | 2;
      dataBits: 7 | 8;
      timeout: number;
      interFrameDelay?: number;
      /** extra tries after no usable answer (config default 2; one-shot CLI reads: none) */
      retries?: number;
    }
  | { id: string; type: 'modbus-tcp'; host: string; port: number; timeout: number; retries?: number }
  | {
      id: string;
      type: 'gpio';
      chip?: string | number;
      backend: 'sysfs' | 'simulated';
      simulate?: { vehiclesPerMinute: number; speed: number; speedSpread: number; bounce: number; seed?: number };
    }
  | { id: string; type: 'firmata'; port: string; baudRate: number; samplingInterval: number };

/**
 * Builds the driver for a bus. Drivers are loaded lazily: a gateway with no Modbus bus never
 * pays for modbus-serial and serialport (RSS target on a Pi).
 */
export async function createBusDriver(bus: BusSettings): Promise<BusDriver> {
  switch (bus.type) {
    case 'modbus-rtu': {
      const { ModbusBus } = await import('../drivers/modbus/bus.js');
      return ModbusBus.rtu({
        id: bus.id,
        path: bus.port,
        baudRate: bus.baudRate,
        parity: bus.parity,
        stopBits: bus.stopBits,
        dataBits: bus.dataBits,
        timeoutMs: bus.timeout,
        ...(bus.retries !== undefined ? { retries: bus.retries } : {}),
        ...(bus.interFrameDelay !== undefined ? { interFrameDelayMs: bus.interFrameDelay } : {}),
      });
    }
    case 'modbus-tcp': {
      const { ModbusBus } = await import('../drivers/modbus/bus.js');
      return ModbusBus.tcp({
        id: bus.id,
        host: bus.host,
        port: bus.port,
        timeoutMs: bus.timeout,
        ...(bus.retries !== undefined ? { retries: bus.retries } : {}),
      });
    }
    case 'gpio': {
      const { GpioBus } = await import('../drivers/gpio/bus.js');
      const sim = bus.simulate;
      return new GpioBus({
        id: bus.id,
        backend: bus.backend,
        ...(bus.chip !== undefined ? { chip: bus.chip } : {}),
        ...(sim
          ? {
              simulate: {
                vehiclesPerMinute: sim.vehiclesPerMinute,
                speed: sim.speed,
                speedSpread: sim.speedSpread,
                bounceMs: sim.bounce,
                ...(sim.seed !== undefined ? { seed: sim.seed } : {}),
              },
            }
          : {}),
      });
    }
    case 'firmata': {
      const { FirmataBus } = await import('../drivers/firmata/bus.js');
      return new FirmataBus({
        id: bus.id,
        path: bus.port,
        baudRate: bus.baudRate,
        samplingIntervalMs: bus.samplingInterval,
      });
    }
    default:
      throw new LangbiangError(
        'USAGE',
        `bus ${(bus as { id: string }).id}: type ${(bus as { type: string }).type} has no driver in this release yet`,
      );
  }
}

/** A one-shot bus from a CLI SPEC (scan/read/write). */
export function busSettingsFromSpec(spec: BusSpec, timeoutMs: number): BusSettings {
  if (spec.type === 'modbus-tcp')
    return { id: 'cli', type: 'modbus-tcp', host: spec.host, port: spec.port, timeout: timeoutMs };
  return { id: 'cli', ...spec, timeout: timeoutMs };
}
