import { LangbiangError } from '../../gateway/core/errors.js';
import { ByteReader } from './bytes.js';
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
/**
 * Longest a receiver waits before acking what it committed for a gateway, unless the gateway's
 * batch asks for a prompt ack (FLAG_PROMPT_ACK): one ack a minute is enough for a gateway whose
 * confirmTimeout is 2 minutes, and costs a fraction of one per 30 s batch.
 */
export const ACK_PACE_MS = 60_000;
/** An ack is a few dozen bytes (a signed one a few hundred); anything much larger is not one. */
export const MAX_ACK_BYTES = 4096;
/** A signed ack is valid this long after the receiver made it (replaying one changes nothing: watermarks only rise). */
export const ACK_SIGNATURE_LIFETIME_MS = 10 * 60_000;

/**
 * The compact ack (docs/protocol.md, "Compact ack"): version byte 2, a flags byte, the epoch, then
 * seq, events and ts as unsigned LEB128 varints — ~29 bytes where the JSON one is ~115. The gateway
 * id is the topic's. Its first byte can never start a JSON ack (`{`, 0x7b), so one decoder reads both.
 */
export const COMPACT_ACK_VERSION = 2;
/** compact ack flags bit 0: the epoch field holds raw bytes and the epoch is their lowercase hex */
export const ACK_FLAG_EPOCH_HEX = 0x01;
const HEX_EPOCH = /^(?:[0-9a-f]{2})+$/;
const MAX_EPOCH_BYTES = 256;

export function encodeAck(a: AckMessage): Buffer {
  return Buffer.from(JSON.stringify(a), 'utf8');
}

export function encodeCompactAck(a: AckMessage): Buffer {
  const hex = a.epoch.length <= 2 * MAX_EPOCH_BYTES && HEX_EPOCH.test(a.epoch);
  const epoch = hex ? Buffer.from(a.epoch, 'hex') : Buffer.from(a.epoch, 'utf8');
  if (epoch.length === 0 || epoch.length > MAX_EPOCH_BYTES)
    throw new LangbiangError('ENCODE_FAILED', `ack: epoch must be 1..${MAX_EPOCH_BYTES} bytes`);
  for (const key of ['seq', 'events', 'ts'] as const)
    if (!Number.isSafeInteger(a[key]) || a[key] < 0)
      throw new LangbiangError('ENCODE_FAILED', `ack: ${key} must be an integer ≥ 0`);
  const out = Buffer.allocUnsafe(4 + epoch.length + 3 * 8);
  let pos = 0;
  const uv = (n: number) => {
    while (n >= 0x80) {
      out[pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    out[pos++] = n;
  };
  out[pos++] = COMPACT_ACK_VERSION;
  out[pos++] = hex ? ACK_FLAG_EPOCH_HEX : 0;
  uv(epoch.length);
  pos += epoch.copy(out, pos);
  uv(a.seq);
  uv(a.events);
  uv(a.ts);
  return out.subarray(0, pos);
}

/**
 * Reads a JSON ack or a compact one. A compact ack does not name its gateway: `gateway` is the
 * topic's (a gateway subscribes to its own `ack` topic only).
 */
export function decodeAck(payload: Buffer | Uint8Array | string, gateway?: string): AckMessage {
  if (typeof payload !== 'string' && payload.length > 0 && payload[0] === COMPACT_ACK_VERSION)
    return decodeCompactAck(payload, gateway);
  return ackFromObject(parseJsonPayload(payload, 'ack payload', MAX_ACK_BYTES));
}

function decodeCompactAck(payload: Uint8Array, gateway: string | undefined): AckMessage {
  const r = new ByteReader(payload, 'compact ack');
  if (gateway === undefined || gateway === '') r.fail('a compact ack names no gateway; decode it with its topic');
  if (payload.length > MAX_ACK_BYTES) r.fail(`larger than ${MAX_ACK_BYTES} bytes`);
  r.byte();
  const flags = r.byte();
  if ((flags & ~ACK_FLAG_EPOCH_HEX) !== 0) r.fail(`unknown flags 0x${flags.toString(16)}`);
  const len = r.varint();
  if (len === 0 || len > MAX_EPOCH_BYTES) r.fail(`epoch of ${len} bytes`);
  if (len > r.remaining) r.fail('truncated epoch');
  const epoch = flags & ACK_FLAG_EPOCH_HEX ? Buffer.from(r.bytes(len)).toString('hex') : r.utf8(len);
  const seq = r.varint();
  const events = r.varint();
  const ts = r.varint();
  if (r.remaining !== 0) r.fail(`${r.remaining} bytes after the ack`);
  return { v: ACK_VERSION, gateway: gateway as string, epoch, seq, events, ts };
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
