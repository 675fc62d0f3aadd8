import { LangbiangError } from '../../gateway/core/errors.js';
import { isPlainObject, parseJsonPayload } from './json.js';

/**
 * The city's end-to-end acknowledgement, published by a receiver on `langbiang/v1/{gw}/ack` after a
 * commit (docs/protocol.md, "End-to-end acknowledgement"). `seq` and `events` are watermarks: every
 * reading with a seq at or below `seq` (and every event with an id at or below `events`) of that
 * store epoch is stored at the city or accounted for by a gap event the city stored. They are
 * computed in the receiver's database, in the transaction that stored the data, so receivers
 * that share one database agree whatever order they commit in.
 */
export interface AckMessage {
  v: number;
  gateway: string;
  epoch: string;
  /** readings watermark (0: nothing yet) */
  seq: number;
  /** events watermark (0: nothing yet) */
  events: number;
  /** wall ms when the receiver computed it */
  ts: number;
}

export const ACK_VERSION = 1;
/** An ack is a few dozen bytes (a signed one a few hundred); anything much larger is not one. */
export const MAX_ACK_BYTES = 4096;
/** A signed ack is valid this long after the receiver made it (replaying one changes nothing: watermarks only rise). */
export const ACK_SIGNATURE_LIFETIME_MS = 10 * 60_000;

export function encodeAck(a: AckMessage): Buffer {
  return Buffer.from(JSON.stringify(a), 'utf8');
}

export function decodeAck(payload: Buffer | Uint8Array | string): AckMessage {
  return ackFromObject(parseJsonPayload(payload, 'ack payload', MAX_ACK_BYTES));
}

/** The ack inside a signed envelope's verified body, checked the same way. */
export function ackFromObject(doc: unknown): AckMessage {
  const what = 'ack payload';
  const bad = (msg: string): never => {
    throw new LangbiangError('DECODE_FAILED', `${what}: ${msg}`);
  };
  if (!isPlainObject(doc)) return bad('not a JSON object');
  if ('sig' in doc && 'body' in doc) bad('signed, but no receiver key is pinned on this gateway to check it');
  if (doc.v !== ACK_VERSION) bad(`version ${JSON.stringify(doc.v)} is not supported (expected ${ACK_VERSION})`);
  if (typeof doc.gateway !== 'string' || doc.gateway === '' || doc.gateway.length > 256)
    bad('gateway must be a non-empty string');
  if (typeof doc.epoch !== 'string' || doc.epoch === '' || doc.epoch.length > 256)
    bad('epoch must be a non-empty string');
  for (const key of ['seq', 'events', 'ts'] as const) {
    if (!Number.isSafeInteger(doc[key]) || (doc[key] as number) < 0) bad(`${key} must be an integer ≥ 0`);
  }
  return {
    v: ACK_VERSION,
    gateway: doc.gateway as string,
    epoch: doc.epoch as string,
    seq: doc.seq as number,
    events: doc.events as number,
    ts: doc.ts as number,
  };
}
