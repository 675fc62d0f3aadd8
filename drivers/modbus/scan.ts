import { isLangbiangError, LangbiangError, ModbusExceptionError } from '../../gateway/core/errors.js';
import type { RegisterFunction } from '../../gateway/core/point.js';
import type { ModbusBus } from './bus.js';
import { reasonForError } from './errors.js';

export interface ScanProbe {
  function: RegisterFunction;
  address: number;
  count: number;
}

export interface ScanOptions {
  units: number[];
  onProgress?: (unit: number, found: boolean) => void;
  /** what to ask each unit; default one holding register at 0 */
  probe?: ScanProbe;
  /** per-unit wait; short, because most of a 1-247 scan is waiting for units that aren't there */
  timeoutMs?: number;
}

export interface ScanHit {
  unit: number;
  /** 'data', 'exception N (name)' or 'garbled answer' */
  answeredWith: string;
  data?: number[];
  exceptionCode?: number;
}

export const DEFAULT_SCAN_PROBE: ScanProbe = { function: 'holding', address: 0, count: 1 };

/** Modbus TCP gateways answer for absent serial units with these; they mean "nobody there". */
const GATEWAY_NO_TARGET = new Set([10, 11]);

/**
 * Ask every unit id once. Any answer — data or a Modbus exception — means a unit lives at that
 * address (a device refusing register 0 still had to hear its address); silence means none.
 * Rejects only when the bus itself fails (BUS_CLOSED / PORT_NOT_OPEN).
 */
export async function scanUnits(bus: ModbusBus, opts: ScanOptions): Promise<ScanHit[]> {
  const probe = opts.probe ?? DEFAULT_SCAN_PROBE;
  const timeoutMs = opts.timeoutMs ?? 200;
  const hits: ScanHit[] = [];
  for (const unit of opts.units) {
    if (!Number.isInteger(unit) || unit < 1 || unit > 247) {
      throw new LangbiangError('USAGE', `unit ids are 1-247, got ${unit}`);
    }
    let hit: ScanHit | undefined;
    try {
      const data = await bus.readRaw(unit, probe.function, probe.address, probe.count, timeoutMs);
      hit = { unit, answeredWith: 'data', data };
    } catch (err) {
      if (err instanceof ModbusExceptionError) {
        if (!GATEWAY_NO_TARGET.has(err.exceptionCode)) {
          hit = { unit, answeredWith: reasonForError(err), exceptionCode: err.exceptionCode };
        }
      } else if (isLangbiangError(err) && (err.code === 'MODBUS_CRC' || err.code === 'MODBUS_BAD_FRAME')) {
        hit = { unit, answeredWith: 'garbled answer' };
      } else if (!(isLangbiangError(err) && err.code === 'MODBUS_TIMEOUT')) {
        throw err;
      }
    }
    if (hit) hits.push(hit);
    opts.onProgress?.(unit, hit !== undefined);
  }
  return hits;
}
