import type { CommandRequest, CommandResult } from '../../gateway/core/command.js';
import { describeError } from '../../gateway/core/errors.js';
import { isPlainObject, parseJsonPayload } from './json.js';

/**
 * The downlink envelope on `langbiang/v1/{gatewayId}/cmd` and its answer on `cmd/result`
 * (docs/protocol.md). Parsing never throws: a bad command is answered, not crashed on.
 */
export const COMMAND_VERSION = 1;
export const MAX_COMMAND_PAYLOAD = 16 * 1024;
const MAX_ID = 128;
const MAX_NAME = 128;
const MAX_STRING_VALUE = 1024;
/** the furthest ahead a command's deadline may be: a command is for now, not for a queue */
export const MAX_DEADLINE_LEAD_MS = 60 * 60_000;
const KEYS = new Set(['v', 'id', 'device', 'point', 'value', 'deadline']);

export interface CommandEnvelope {
  v?: number;
  id: string;
  device: string;
  point: string;
  value: number | boolean | string;
  /** wall ms since 1970, or an ISO 8601 time; required, at most MAX_DEADLINE_LEAD_MS ahead */
  deadline: number | string;
}

/** What is published on cmd/result. `id` is null only when the command's id could not be read. */
export interface CommandResultMessage extends Omit<CommandResult, 'id'> {
  v: number;
  id: string | null;
}

export type ParsedCommand = { ok: true; request: CommandRequest } | { ok: false; id: string | null; message: string };

/**
 * `now` (wall ms) checks the deadline's lead; the actor is who signed the message (the caller
 * knows, the message does not say).
 */
export function parseCommand(
  payload: Buffer | Uint8Array | string,
  opts: { now?: number; actor?: string } = {},
): ParsedCommand {
  let doc: unknown;
  try {
    doc = parseJsonPayload(payload, 'command', MAX_COMMAND_PAYLOAD);
  } catch (err) {
    return { ok: false, id: null, message: describeError(err) };
  }
  if (!isPlainObject(doc)) return { ok: false, id: null, message: 'command: not a JSON object' };
  const id = typeof doc.id === 'string' && doc.id.length > 0 && doc.id.length <= MAX_ID ? doc.id : null;
  const bad = (message: string): ParsedCommand => ({
    ok: false,
    id,
    message: `command${id ? ` ${id}` : ''}: ${message}`,
  });
  if (id === null) {
    return bad(doc.id === undefined ? 'id is missing' : `id must be a string of 1–${MAX_ID} characters`);
  }
  for (const k of Object.keys(doc)) if (!KEYS.has(k)) return bad(`unknown key "${k.slice(0, 40)}"`);
  if (doc.v !== undefined && doc.v !== COMMAND_VERSION) return bad(`version ${JSON.stringify(doc.v)} is not supported`);
  for (const f of ['device', 'point'] as const) {
    const v = doc[f];
    if (typeof v !== 'string' || v === '' || v.length > MAX_NAME)
      return bad(`${f} must be a string of 1–${MAX_NAME} characters`);
  }
  const value = doc.value;
  const valueOk =
    (typeof value === 'number' && Number.isFinite(value)) ||
    typeof value === 'boolean' ||
    (typeof value === 'string' && value.length <= MAX_STRING_VALUE);
  if (!valueOk)
    return bad(value === undefined ? 'value is missing' : 'value must be a finite number, a boolean or a short string');
  const request: CommandRequest = {
    id,
    device: doc.device as string,
    point: doc.point as string,
    value: value as number | boolean | string,
    source: 'mqtt',
    actor: opts.actor ?? 'city',
  };
  // a command queued in a broker session during an outage must not run hours later
  if (doc.deadline === undefined) return bad('deadline is missing (every command says by when it must run)');
  const d = doc.deadline;
  const ms =
    typeof d === 'number'
      ? d
      : typeof d === 'string' && d.length <= 40 && /^\d{4}-\d\d-\d\dT/.test(d)
        ? Date.parse(d)
        : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms <= 0) return bad('deadline must be wall ms since 1970 or an ISO 8601 time');
  if (opts.now !== undefined && ms - opts.now > MAX_DEADLINE_LEAD_MS)
    return bad(`deadline is more than ${MAX_DEADLINE_LEAD_MS / 60_000} minutes ahead`);
  request.deadline = ms;
  return { ok: true, request };
}

/**
 * The command id inside a signed envelope that was refused, read without trusting it, so the
 * refusal on `cmd/result` can name it; null when there is none to read.
 */
export function peekCommandId(payload: Buffer | Uint8Array | string): string | null {
  try {
    if (payload.length > MAX_COMMAND_PAYLOAD * 2) return null;
    const env = JSON.parse(Buffer.from(payload as Uint8Array).toString('utf8')) as { body?: unknown; id?: unknown };
    const doc =
      typeof env.body === 'string'
        ? (JSON.parse(Buffer.from(env.body, 'base64').toString('utf8')) as { message?: { id?: unknown } }).message
        : env;
    const id = (doc as { id?: unknown } | undefined)?.id;
    return typeof id === 'string' && id.length > 0 && id.length <= MAX_ID ? id : null;
  } catch {
    return null;
  }
}

export function encodeCommandResult(r: CommandResultMessage): Buffer {
  return Buffer.from(JSON.stringify(r), 'utf8');
}
