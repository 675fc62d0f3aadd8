import { existsSync } from 'node:fs';
import { SERIAL_BY_ID } from './config/hardware-checks.js';
import type { BusConfig, GatewayConfig } from './config/schema.js';
import type { BusDriver, BusHealth, DeviceHealth } from './core/driver.js';

/**
 * The gateway's health as a technician needs it: every configured bus and every enabled device,
 * whether or not the bus could be opened, and the problems in words. /healthz, `langbiang status`,
 * the console, /metrics and the systemd status line all read this one report, so they agree.
 */

/** Why a bus is not open, in the words a technician acts on. */
export function busProblem(bus: BusConfig, lastError: string | undefined): string {
  const why = lastError ?? 'not open yet';
  if (bus.type === 'modbus-rtu' || bus.type === 'firmata') {
    if (!existsSync(bus.port)) return `${bus.port} not found — see ls ${SERIAL_BY_ID}`;
    if (/EACCES|permission denied/i.test(why))
      return `${bus.port}: permission denied — the gateway's user must be in the dialout group`;
    if (/EBUSY|resource busy|cannot lock/i.test(why))
      return `${bus.port} is in use by another program (another gateway, a scan, a terminal?)`;
    return `${bus.port}: ${why}`;
  }
  if (bus.type === 'modbus-tcp') {
    const where = `${bus.host}:${bus.port}`;
    if (/ECONNREFUSED/.test(why)) {
      // a Modbus TCP "device" on this very machine is, nearly always, the demo's simulators
      const local = bus.host === '127.0.0.1' || bus.host === 'localhost' || bus.host === '::1';
      if (local)
        return `${where} refused the connection — nothing listens there; if these are the demo's simulated devices, start them too: langbiang start --config FILE --simulate`;
      return `${where} refused the connection — is the device (or serial-to-TCP gateway) on, and is the port right?`;
    }
    if (/EHOSTUNREACH|ENETUNREACH|timed out/i.test(why))
      return `${where} does not answer (${why}) — check the cable, the address and the network`;
    return `${where}: ${why}`;
  }
  return why;
}

/**
 * Every configured bus, with the health its driver reports (or a closed bus when it has none), and
 * the config's enabled devices on it in config order: a device the driver has not seen yet is
 * `not_polled`, and every device of a bus that is not open is `bus_error`.
 */
export function busReport(config: GatewayConfig, drivers: ReadonlyMap<string, BusDriver>): BusHealth[] {
  return config.buses.map((bus) => {
    const driver = drivers.get(bus.id);
    const h: BusHealth = driver
      ? driver.health()
      : {
          bus: bus.id,
          type: bus.type,
          open: false,
          lastError: 'no driver started',
          reconnects: 0,
          queueDepth: 0,
          transactions: 0,
          devices: [],
        };
    const seen = new Map(h.devices.map((d) => [d.device, d]));
    const devices: DeviceHealth[] = [];
    for (const dev of config.devices) {
      if (dev.bus !== bus.id || dev.enabled === false) continue;
      const d = seen.get(dev.id) ?? {
        device: dev.id,
        state: 'not_polled',
        consecutiveFailures: 0,
        polls: 0,
        errors: 0,
      };
      seen.delete(dev.id);
      devices.push(h.open ? d : { ...d, state: 'bus_error' });
    }
    devices.push(...seen.values());
    const out: BusHealth = { ...h, devices };
    if (!h.open) out.problem = busProblem(bus, h.lastError);
    return out;
  });
}

/** The problems of a report, one sentence each: buses that are not open, devices that are offline. */
export function healthProblems(buses: readonly BusHealth[]): string[] {
  const problems: string[] = [];
  for (const b of buses) {
    if (!b.open) {
      const n = b.devices.length;
      problems.push(`bus ${b.bus}: ${b.problem ?? 'not open'} (${n} device${n === 1 ? '' : 's'} not polled)`);
      continue;
    }
    for (const d of b.devices) {
      if (d.state === 'offline')
        problems.push(`device ${d.device} on bus ${b.bus}: offline${d.lastError ? ` — ${d.lastError}` : ''}`);
    }
  }
  return problems;
}
