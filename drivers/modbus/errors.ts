import { LangbiangError, MODBUS_EXCEPTION_NAMES, ModbusExceptionError } from '../../gateway/core/errors.js';
import type { Quality } from '../../gateway/core/reading.js';

/**
 * modbus-serial reports trouble as plain Errors whose only distinguishing marks are message text,
 * `errno` and `modbusCode`. This is the one place that reads them; everything above branches on
 * LangbiangError codes.
 */
export function toModbusError(err: unknown, context: string): LangbiangError {
  if (err instanceof LangbiangError) return err;
  const e = (err ?? {}) as { message?: unknown; errno?: unknown; modbusCode?: unknown; code?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (typeof e.modbusCode === 'number') return new ModbusExceptionError(e.modbusCode, context);
  if (e.errno === 'ETIMEDOUT' || /timed out/i.test(message)) {
    return new LangbiangError('MODBUS_TIMEOUT', `${context}: no answer (timed out)`, undefined, { cause: err });
  }
  if (/crc/i.test(message)) {
    return new LangbiangError('MODBUS_CRC', `${context}: garbled answer (CRC error)`, undefined, { cause: err });
  }
  if (/data length error|unexpected data error|bad client address/i.test(message)) {
    return new LangbiangError('MODBUS_BAD_FRAME', `${context}: malformed answer (${message})`, undefined, {
      cause: err,
    });
  }
  // modbus-serial parses answers with Buffer reads: a frame whose byte count lies throws these
  if (err instanceof RangeError || err instanceof TypeError) {
    return new LangbiangError('MODBUS_BAD_FRAME', `${context}: malformed answer (${message})`, undefined, {
      cause: err,
    });
  }
  if (/port not open/i.test(message)) {
    return new LangbiangError('PORT_NOT_OPEN', `${context}: port not open`, undefined, { cause: err });
  }
  return new LangbiangError('BUS_CLOSED', `${context}: ${message}`, undefined, { cause: err });
}

/** The reading quality a failed transaction turns into. */
export function qualityForError(err: LangbiangError): Quality {
  switch (err.code) {
    case 'MODBUS_TIMEOUT':
      return 'timeout';
    case 'MODBUS_CRC':
    case 'MODBUS_BAD_FRAME':
      return 'crc_error';
    case 'MODBUS_EXCEPTION':
      return 'exception';
    case 'DECODE_FAILED':
      return 'decode_error';
    case 'DEVICE_BACKED_OFF':
      return 'device_offline';
    case 'OUT_OF_RANGE':
      return 'out_of_range';
    default:
      return 'bus_error';
  }
}

/** Short reason stored beside a non-good quality; exceptions keep their code so the console can show it. */
export function reasonForError(err: LangbiangError): string {
  if (err instanceof ModbusExceptionError) {
    const name = MODBUS_EXCEPTION_NAMES[err.exceptionCode];
    return name ? `exception ${err.exceptionCode} (${name})` : `exception ${err.exceptionCode}`;
  }
  return err.message;
}
