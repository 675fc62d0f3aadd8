import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BusConfig } from '../../gateway/config/index.js';
import { busProblem, healthProblems } from '../../gateway/health.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-health-'));
const present = join(dir, 'ttyUSB0');
writeFileSync(present, '');
const rtu = (port: string) => ({ id: 'rs485-1', type: 'modbus-rtu', port }) as BusConfig;
const tcp = (host: string, port: number) => ({ id: 'cabinet', type: 'modbus-tcp', host, port }) as BusConfig;

describe('why a bus is not open, in words', () => {
  it('a serial port: missing, not allowed, taken, or what the system said', () => {
    expect(busProblem(rtu(join(dir, 'nope')), 'Error: No such file or directory, cannot open')).toBe(
      `${join(dir, 'nope')} not found — see ls /dev/serial/by-id`,
    );
    expect(busProblem(rtu(present), 'Error: Permission denied, cannot open')).toBe(
      `${present}: permission denied — the gateway's user must be in the dialout group`,
    );
    expect(busProblem(rtu(present), 'Error: Error Resource temporarily unavailable Cannot lock port')).toBe(
      `${present} is in use by another program (another gateway, a scan, a terminal?)`,
    );
    expect(busProblem(rtu(present), 'Error: Input/output error')).toBe(`${present}: Error: Input/output error`);
  });

  it('a Modbus TCP device: refused (here: the simulators hint; elsewhere: the device), unreachable', () => {
    expect(busProblem(tcp('127.0.0.1', 15502), 'connect ECONNREFUSED 127.0.0.1:15502')).toBe(
      "127.0.0.1:15502 refused the connection — nothing listens there; if these are the demo's simulated devices, start them too: langbiang start --config FILE --simulate",
    );
    expect(busProblem(tcp('10.0.0.5', 502), 'connect ECONNREFUSED 10.0.0.5:502')).toBe(
      '10.0.0.5:502 refused the connection — is the device (or serial-to-TCP gateway) on, and is the port right?',
    );
    expect(busProblem(tcp('10.0.0.5', 502), 'connect timed out after 2000 ms')).toBe(
      '10.0.0.5:502 does not answer (connect timed out after 2000 ms) — check the cable, the address and the network',
    );
  });

  it('problems: a closed bus once (with its device count), offline devices of open buses', () => {
    const dev = (device: string, state: 'ok' | 'offline' | 'bus_error', lastError?: string) => ({
      device,
      state,
      consecutiveFailures: 0,
      polls: 0,
      errors: 0,
      ...(lastError ? { lastError } : {}),
    });
    const bus = { type: 'modbus-rtu', reconnects: 0, queueDepth: 0, transactions: 0 };
    expect(
      healthProblems([
        { ...bus, bus: 'a', open: false, problem: '/dev/ttyUSB0 not found', devices: [dev('x', 'bus_error')] },
        { ...bus, bus: 'b', open: true, devices: [dev('y', 'ok'), dev('z', 'offline', 'b unit 9: timed out')] },
      ]),
    ).toEqual([
      'bus a: /dev/ttyUSB0 not found (1 device not polled)',
      'device z on bus b: offline — b unit 9: timed out',
    ]);
  });
});
