import type { DeviceProfile, PointDef } from './point.js';
import type { PointValue } from './reading.js';

/** A device as a driver needs to know it: which unit/pins, which register map. */
export interface DeviceBinding {
  id: string;
  profile: DeviceProfile;
  /** Modbus unit id 1-247 */
  unit?: number;
  /** GPIO / Firmata pin numbers by the profile's pin names */
  pins?: Record<string, number>;
  /** device-specific settings the profile declares (e.g. a loop pair's loopDistance) */
  options?: Record<string, number | string | boolean>;
}

/**
 * ok / degraded / offline come from the driver (how the device answers). The gateway adds two a
 * driver never gives: `bus_error` (its bus is not open, so it cannot be asked) and `not_polled`
 * (the bus is open and the device has not been asked yet).
 */
export type HealthState = 'ok' | 'degraded' | 'offline' | 'bus_error' | 'not_polled';

export interface DeviceHealth {
  device: string;
  state: HealthState;
  consecutiveFailures: number;
  polls: number;
  errors: number;
  lastError?: string;
  lastOkAt?: number;
  /** while backed off: when the driver will ask the device again (wall ms) */
  retryAt?: number;
  /**
   * Points of the profile this unit refuses (answered "illegal data address"): not read any more
   * until the device's profile or unit changes. Absent when the unit answers every listed point.
   */
  unsupported?: string[];
}

export interface BusHealth {
  bus: string;
  type: string;
  open: boolean;
  lastError?: string;
  /** why the bus is not open, in a technician's words (given by the gateway, not the driver) */
  problem?: string;
  reconnects: number;
  queueDepth: number;
  transactions: number;
  /** requests sent again after no usable answer (Modbus buses with retries) */
  retries?: number;
  devices: DeviceHealth[];
}

/**
 * The small driver interface (in the spirit of EdgeX's device SDK): a bus knows how to read and
 * write the points of the devices on it, and reports health. It knows nothing of SQLite or MQTT.
 */
export interface BusDriver {
  readonly id: string;
  readonly type: string;
  open(): Promise<void>;
  close(): Promise<void>;
  /**
   * Optional: the devices this bus will serve, told once before polling starts, so event-driven
   * inputs (GPIO edges, Firmata reports) are armed before the first poll instead of at it.
   */
  attach?(devices: readonly DeviceBinding[]): Promise<void>;
  /** Read these points of one device. Never rejects for device trouble: failures come back as qualities. */
  readPoints(device: DeviceBinding, points: readonly PointDef[]): Promise<PointValue[]>;
  /** Write one point (already validated against the profile). Rejects with a LangbiangError. */
  writePoint(device: DeviceBinding, point: PointDef, value: number | boolean): Promise<void>;
  health(): BusHealth;
}
