import { LangbiangError } from '../core/errors.js';

export type BusSpec =
  | {
      type: 'modbus-rtu';
      port: string;
      baudRate: number;
      parity: 'none' | 'even' | 'odd';
      stopBits: 1 | 2;
      dataBits: 7 | 8;
    }
  | { type: 'modbus-tcp'; host: string; port: number };

const BAUD_RATES = new Set([1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200]);

function bad(spec: string, why: string): LangbiangError {
  return new LangbiangError(
    'BUS_SPEC_INVALID',
    `bus "${spec}": ${why} (expected rtu:/dev/ttyUSB0?baud=9600&parity=none&stop=1 or tcp:HOST:PORT)`,
  );
}

/** `rtu:/dev/ttyUSB0?baud=9600&parity=none&stop=1` or `tcp:HOST:PORT` (docs/cli.md). */
export function parseBusSpec(spec: string): BusSpec {
  const colon = spec.indexOf(':');
  if (colon < 0) throw bad(spec, 'missing rtu: or tcp: prefix');
  const kind = spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  if (kind === 'tcp') {
    const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(rest);
    if (!m) throw bad(spec, 'expected HOST:PORT');
    const port = Number(m[2]);
    if (port < 1 || port > 65535) throw bad(spec, `port ${port} is not 1-65535`);
    return { type: 'modbus-tcp', host: m[1]!, port };
  }
  if (kind === 'rtu') {
    const q = rest.indexOf('?');
    const path = q < 0 ? rest : rest.slice(0, q);
    if (!path) throw bad(spec, 'missing serial port path');
    const params = new URLSearchParams(q < 0 ? '' : rest.slice(q + 1));
    for (const key of params.keys()) {
      if (!['baud', 'parity', 'stop', 'data'].includes(key))
        throw bad(spec, `unknown option "${key}" (use baud, parity, stop, data)`);
    }
    const baudRate = Number(params.get('baud') ?? 9600);
    if (!BAUD_RATES.has(baudRate)) throw bad(spec, `baud ${params.get('baud')} is not a standard rate`);
    const parity = (params.get('parity') ?? 'none') as 'none' | 'even' | 'odd';
    if (!['none', 'even', 'odd'].includes(parity)) throw bad(spec, `parity must be none, even or odd`);
    const stopBits = Number(params.get('stop') ?? 1);
    if (stopBits !== 1 && stopBits !== 2) throw bad(spec, 'stop must be 1 or 2');
    const dataBits = Number(params.get('data') ?? 8);
    if (dataBits !== 7 && dataBits !== 8) throw bad(spec, 'data must be 7 or 8');
    return { type: 'modbus-rtu', port: path, baudRate, parity, stopBits, dataBits };
  }
  throw bad(spec, `unknown bus kind "${kind}"`);
}

/** "1-247", "1,2,5-9" → sorted unique unit ids, each 1..247. */
export function parseUnitRange(text: string): number[] {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new LangbiangError('USAGE', `units "${text}": expected e.g. 1-247 or 1,3,10-20`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a < 1 || b > 247 || a > b)
      throw new LangbiangError('USAGE', `units "${part.trim()}": Modbus unit ids are 1-247`);
    for (let u = a; u <= b; u++) out.add(u);
  }
  return [...out].sort((x, y) => x - y);
}
