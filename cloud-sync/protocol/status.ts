import { LangbiangError } from '../../gateway/core/errors.js';
import { isPlainObject, parseJsonPayload } from './json.js';

/** The retained message on `…/status`; the LWT carries the same shape with state 'offline'. */
export interface StatusMessage {
  v: number;
  gateway: string;
  epoch: string;
  state: 'online' | 'offline';
  /** wall ms when this status was made (for the LWT: when the connection that left it began) */
  ts: number;
  version?: string;
  /** readings stored but not yet acknowledged by the broker */
  backlog?: number;
  /** age in seconds of the oldest unacknowledged reading, null when none */
  oldestUnsentAgeS?: number | null;
  /** wall ms of the last PUBACK, null before the first */
  lastAckAt?: number | null;
  /** readings stored but not yet confirmed by the city (end-to-end ack) */
  unconfirmed?: number;
  /** age in seconds of the oldest unconfirmed reading, null when none */
  oldestUnconfirmedAgeS?: number | null;
  /** wall ms of the last end-to-end ack that confirmed something, null before the first */
  lastConfirmAt?: number | null;
  /** how delivery is confirmed: `city` (end-to-end acks) or `broker` (PUBACK only) */
  confirm?: 'city' | 'broker';
  /** the software update state: the release kept to go back to, one waiting for confirmation, the last update's outcome */
  update?: {
    previous: string | null;
    pending?: { version: string; attempts: number };
    last?: { outcome: string; version: string; at: string; reason?: string };
  };
  /** set on the LWT and on a clean stop */
  reason?: 'lwt' | 'shutdown';
}

export const STATUS_VERSION = 1;

export function encodeStatus(s: StatusMessage): Buffer {
  return Buffer.from(JSON.stringify(s), 'utf8');
}

export function decodeStatus(payload: Buffer | Uint8Array | string): StatusMessage {
  const doc = parseJsonPayload(payload, 'status payload', 64 * 1024);
  if (!isPlainObject(doc) || doc.v !== STATUS_VERSION || (doc.state !== 'online' && doc.state !== 'offline')) {
    throw new LangbiangError('DECODE_FAILED', 'status payload: not a version 1 status object');
  }
  return doc as unknown as StatusMessage;
}
