/**
 * Typed errors with stable codes. Callers branch on `code`, never on message text; the CLI prints
 * `message` alone (no stack) unless --verbose.
 */
export type ErrorCode =
  // configuration and profiles
  | 'CONFIG_INVALID'
  | 'CONFIG_UNREADABLE'
  | 'PROFILE_INVALID'
  | 'PROFILE_NOT_FOUND'
  /** not a duration of the one grammar (gateway/core/duration.ts); config callers report it as CONFIG_INVALID */
  | 'DURATION_INVALID'
  // modbus / transport
  | 'MODBUS_TIMEOUT'
  | 'MODBUS_CRC'
  | 'MODBUS_EXCEPTION'
  | 'MODBUS_BAD_FRAME'
  | 'PORT_NOT_OPEN'
  | 'PORT_OPEN_FAILED'
  | 'BUS_CLOSED'
  | 'DEVICE_BACKED_OFF'
  // gpio / firmata
  | 'GPIO_UNAVAILABLE'
  | 'BOARD_NOT_READY'
  // codec
  | 'DECODE_FAILED'
  | 'ENCODE_FAILED'
  // commands
  | 'COMMAND_INVALID'
  | 'UNKNOWN_DEVICE'
  | 'UNKNOWN_POINT'
  | 'NOT_WRITABLE'
  | 'OUT_OF_RANGE'
  | 'EXPIRED'
  | 'DEVICE_ERROR'
  | 'BUSY'
  | 'FORBIDDEN'
  /** a message from the network that is not signed by a pinned city key, or not for now or here */
  | 'UNTRUSTED'
  /** a command id already used, by the same source, for a different command */
  | 'CONFLICT'
  // store
  | 'STORE_FAILED'
  | 'STORE_SCHEMA_TOO_NEW'
  // provisioning and remote config
  | 'BUNDLE_INVALID'
  | 'REMOTE_CONFIG_REFUSED'
  // release bundles and updates (gateway/update)
  | 'UPDATE_BAD_SIGNATURE'
  | 'UPDATE_NO_KEY'
  | 'UPDATE_CORRUPT'
  | 'UPDATE_DOWNGRADE'
  | 'UPDATE_INCOMPATIBLE'
  | 'UPDATE_WRONG_ARCH'
  | 'UPDATE_FAILED'
  /** a bundle ordered by the city that could not be fetched whole, with the order's hash (gateway/update/download.ts) */
  | 'UPDATE_DOWNLOAD'
  // the receiver's NGSI-LD output: the context broker cannot take a batch now (retried)
  | 'NGSI_LD_UNAVAILABLE'
  // cli / usage
  | 'USAGE'
  /** the console's SQL box stopped a query at its time limit */
  | 'SQL_TIMEOUT'
  | 'BUS_SPEC_INVALID'
  | 'INTERNAL';

export class LangbiangError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LangbiangError';
    this.code = code;
    if (details) this.details = details;
  }
}

/** Modbus exception codes as the spec names them (Modbus Application Protocol v1.1b3, §7). */
export const MODBUS_EXCEPTION_NAMES: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};

export class ModbusExceptionError extends LangbiangError {
  readonly exceptionCode: number;
  constructor(exceptionCode: number, context: string) {
    const name = MODBUS_EXCEPTION_NAMES[exceptionCode] ?? `exception ${exceptionCode}`;
    super('MODBUS_EXCEPTION', `${context}: Modbus exception ${exceptionCode} (${name})`, { exceptionCode });
    this.exceptionCode = exceptionCode;
  }
}

export function isLangbiangError(err: unknown): err is LangbiangError {
  return err instanceof LangbiangError;
}

/** One short sentence for a user, whatever was thrown. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
