import { existsSync, readdirSync } from 'node:fs';
import type { RawProblem } from './problems.js';
import type { GatewayConfig } from './schema.js';
import { checkPemFiles, type PemFinding } from './tls-files.js';

/**
 * What `validate` can check of the machine without the hardware answering: that the serial
 * ports the buses name exist here (a warning: the config may be written on a laptop for a Pi),
 * and that the TLS files are what their keys say (problems: the gateway could not connect).
 */

/** Where Linux keeps stable names of USB serial adapters. */
export const SERIAL_BY_ID = '/dev/serial/by-id';

/** The stable names of the serial adapters plugged in now (empty when none, or not Linux). */
export function serialAdapters(dir = SERIAL_BY_ID): string[] {
  try {
    return readdirSync(dir)
      .sort()
      .map((n) => `${dir}/${n}`);
  } catch {
    return [];
  }
}

/** A warning per bus whose serial port does not exist on this machine, listing the adapters that do. */
export function checkSerialPorts(config: GatewayConfig, byIdDir = SERIAL_BY_ID): RawProblem[] {
  const warnings: RawProblem[] = [];
  config.buses.forEach((bus, i) => {
    if (bus.type !== 'modbus-rtu' && bus.type !== 'firmata') return;
    if (existsSync(bus.port)) return;
    const here = serialAdapters(byIdDir);
    const list =
      here.length > 0
        ? `serial adapters on this machine (ls ${byIdDir}): ${here.join(', ')}`
        : `no serial adapter is plugged in on this machine (${byIdDir} is empty or absent)`;
    warnings.push({
      path: ['buses', i, 'port'],
      message: `${bus.port} does not exist on this machine; ${list} (fine if this config is for another machine)`,
    });
  });
  return warnings;
}

/**
 * sync.tls.ca must parse as a certificate, sync.tls.cert as a certificate and sync.tls.key as a
 * private key that belongs to it (gateway/config/tls-files.ts); each finding under its key.
 */
export function checkTlsFiles(
  config: GatewayConfig,
  now = Date.now(),
): { problems: RawProblem[]; warnings: RawProblem[] } {
  const tls = config.sync?.tls;
  if (!tls) return { problems: [], warnings: [] };
  const found = checkPemFiles(tls, { ca: 'sync.tls.ca', cert: 'sync.tls.cert', key: 'sync.tls.key' }, now);
  const at = (f: PemFinding): RawProblem => ({ path: ['sync', 'tls', f.which], message: f.message });
  return { problems: found.problems.map(at), warnings: found.warnings.map(at) };
}
