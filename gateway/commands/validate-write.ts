import { LangbiangError } from '../core/errors.js';
import type { DeviceProfile, PointDef } from '../core/point.js';

export interface ValidatedWrite {
  point: PointDef;
  value: number | boolean;
}

const TRUE_WORDS = new Set(['1', 'true', 'on', 'bật', 'open', 'mở']);
const FALSE_WORDS = new Set(['0', 'false', 'off', 'tắt', 'close', 'đóng']);

/**
 * The one check every write goes through (the command router, and so the CLI): the point exists,
 * is writable, the value has the right type and lies in the profile's range.
 */
export function validateWrite(profile: DeviceProfile, pointName: string, raw: unknown): ValidatedWrite {
  const point = profile.points.find((p) => p.name === pointName);
  if (!point) {
    const names = profile.points.filter((p) => p.writable).map((p) => p.name);
    throw new LangbiangError(
      'UNKNOWN_POINT',
      `profile ${profile.name} has no point "${pointName}"${names.length ? ` (writable: ${names.slice(0, 12).join(', ')}${names.length > 12 ? ', …' : ''})` : ''}`,
    );
  }
  if (!point.writable) throw new LangbiangError('NOT_WRITABLE', `point "${pointName}" of ${profile.name} is read-only`);

  const isBit = point.type === 'bit';
  let value: number | boolean;
  if (isBit) {
    if (typeof raw === 'boolean') value = raw;
    else if (typeof raw === 'number' && (raw === 0 || raw === 1)) value = raw === 1;
    else if (typeof raw === 'string' && TRUE_WORDS.has(raw.trim().toLowerCase())) value = true;
    else if (typeof raw === 'string' && FALSE_WORDS.has(raw.trim().toLowerCase())) value = false;
    else
      throw new LangbiangError(
        'COMMAND_INVALID',
        `point "${pointName}" takes on/off (1/0, true/false), got ${describeRaw(raw)}`,
      );
  } else if (point.type === 'string') {
    throw new LangbiangError(
      'NOT_WRITABLE',
      `point "${pointName}" is a string point; writing strings is not supported`,
    );
  } else {
    const n = numberFor(point, raw);
    if (!Number.isFinite(n)) {
      throw new LangbiangError('COMMAND_INVALID', `point "${pointName}" takes a number, got ${describeRaw(raw)}`);
    }
    if ((point.min !== undefined && n < point.min) || (point.max !== undefined && n > point.max)) {
      throw new LangbiangError(
        'OUT_OF_RANGE',
        `${n} is out of range for "${pointName}" (${point.min ?? '-∞'}…${point.max ?? '∞'}${point.unit ? ` ${point.unit}` : ''})`,
      );
    }
    if (INTEGER_TYPES.has(point.type)) {
      // A register holds whole raw counts: 12.5 for a 0-254 DALI level would be silently rounded.
      const rawCount = (n - point.offset) / point.scale;
      if (Math.abs(rawCount - Math.round(rawCount)) > 1e-6) {
        throw new LangbiangError(
          'COMMAND_INVALID',
          `point "${pointName}" takes steps of ${point.scale}${point.unit ? ` ${point.unit}` : ''}, got ${n}`,
        );
      }
    }
    value = n;
  }
  return { point, value };
}

const INTEGER_TYPES = new Set(['u16', 'i16', 'u32', 'i32']);

/** Numbers as numbers or numeric text; on/off words too where the point is a 0/1 switch. */
function numberFor(point: PointDef, raw: unknown): number {
  if (typeof raw === 'number') return raw;
  const isSwitch = point.min === 0 && point.max === 1;
  if (typeof raw === 'boolean') return isSwitch ? Number(raw) : Number.NaN;
  if (typeof raw !== 'string' || raw.trim() === '') return Number.NaN;
  const word = raw.trim().toLowerCase();
  if (isSwitch && TRUE_WORDS.has(word)) return 1;
  if (isSwitch && FALSE_WORDS.has(word)) return 0;
  return Number(raw);
}

function describeRaw(raw: unknown): string {
  const text = JSON.stringify(raw) ?? String(raw);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}
