import type { ErrorCode } from './errors.js';

/**
 * Commands from every source — the city over MQTT, the panel and console over HTTP, the CLI,
 * Node-RED, the local schedules — go through one router that implements CommandExecutor.
 */
export type CommandSource = 'mqtt' | 'http' | 'cli' | 'flows' | 'schedule';

export interface CommandRequest {
  /**
   * idempotency key, per source: the same id and content delivered twice runs once (the second gets
   * the first's result); the same id with other content is refused (CONFLICT)
   */
  id: string;
  device: string;
  point: string;
  value: number | boolean | string;
  source: CommandSource;
  /** wall ms; a command arriving after its deadline is refused, not run late */
  deadline?: number;
  /** who asked (user name, 'city', flow id) — for the audit */
  actor?: string;
}

/**
 * The error codes a command result may carry: a subset of the gateway's typed error codes, listed
 * here once. The router refuses with these, the HTTP API maps each to a status (a code without one
 * does not compile), and the protocol's JSON Schema of `cmd/result` lists the same (a test checks).
 */
export const COMMAND_RESULT_CODES = [
  'COMMAND_INVALID',
  'UNKNOWN_DEVICE',
  'UNKNOWN_POINT',
  'NOT_WRITABLE',
  'OUT_OF_RANGE',
  'EXPIRED',
  'DEVICE_ERROR',
  'BUSY',
  'FORBIDDEN',
  'UNTRUSTED',
  'CONFLICT',
] as const satisfies readonly ErrorCode[];

export type CommandResultCode = (typeof COMMAND_RESULT_CODES)[number];

const RESULT_CODE_SET: ReadonlySet<string> = new Set(COMMAND_RESULT_CODES);

/** Whether an error code may stand in a command result as it is (else the result is DEVICE_ERROR or similar). */
export function isCommandResultCode(code: string): code is CommandResultCode {
  return RESULT_CODE_SET.has(code);
}

export interface CommandResult {
  id: string;
  ok: boolean;
  code?: CommandResultCode;
  message?: string;
  /** the value read back after the write, where the device allows */
  readBack?: number | boolean | string | null;
  /** wall ms when the result was decided */
  ts: number;
  /** this id was seen before; this is the stored result */
  duplicate?: boolean;
}

export interface CommandExecutor {
  execute(req: CommandRequest): Promise<CommandResult>;
}
