import { LangbiangError } from '../../gateway/core/errors.js';

/** Shared by the JSON payloads (events, status, cmd): parse with a size cap, never throw a SyntaxError. */
export function parseJsonPayload(payload: Buffer | Uint8Array | string, what: string, maxBytes: number): unknown {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > maxBytes)
    throw new LangbiangError('DECODE_FAILED', `${what}: ${size} bytes is more than the ${maxBytes} allowed`);
  let text: string;
  try {
    text = typeof payload === 'string' ? payload : new TextDecoder('utf-8', { fatal: true }).decode(payload);
  } catch {
    throw new LangbiangError('DECODE_FAILED', `${what}: not UTF-8 text`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new LangbiangError('DECODE_FAILED', `${what}: not JSON`);
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
