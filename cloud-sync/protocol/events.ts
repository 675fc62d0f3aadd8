import { LangbiangError } from '../../gateway/core/errors.js';
import { isPlainObject, parseJsonPayload } from './json.js';
import type { EventsBatch, WireEvent } from './types.js';

/** Events are rare and varied (gaps, command audit, alarms): JSON is small enough and self-describing. */
export const EVENTS_VERSION = 1;
export const MAX_EVENTS_PAYLOAD = 1024 * 1024;

export function encodeEvents(batch: EventsBatch): Buffer {
  return Buffer.from(JSON.stringify(batch), 'utf8');
}

export function decodeEvents(payload: Buffer | Uint8Array | string): EventsBatch {
  const what = 'events payload';
  const doc = parseJsonPayload(payload, what, MAX_EVENTS_PAYLOAD);
  const bad = (msg: string): never => {
    throw new LangbiangError('DECODE_FAILED', `${what}: ${msg}`);
  };
  if (!isPlainObject(doc)) return bad('not a JSON object');
  if (doc.v !== EVENTS_VERSION) bad(`version ${JSON.stringify(doc.v)} is not supported (expected ${EVENTS_VERSION})`);
  if (typeof doc.gateway !== 'string' || doc.gateway === '') bad('gateway must be a non-empty string');
  if (typeof doc.epoch !== 'string' || doc.epoch === '') bad('epoch must be a non-empty string');
  if (!Array.isArray(doc.events)) return bad('events must be an array');
  const events: WireEvent[] = doc.events.map((e, i) => {
    if (!isPlainObject(e)) return bad(`events[${i}] is not an object`);
    if (!Number.isSafeInteger(e.id) || (e.id as number) < 1) bad(`events[${i}].id must be a positive integer`);
    if (typeof e.kind !== 'string' || e.kind === '') bad(`events[${i}].kind must be a non-empty string`);
    if (!Number.isSafeInteger(e.ts)) bad(`events[${i}].ts must be an integer (ms)`);
    if (!isPlainObject(e.data)) bad(`events[${i}].data must be an object`);
    return { id: e.id as number, kind: e.kind as string, ts: e.ts as number, data: e.data as Record<string, unknown> };
  });
  const batch: EventsBatch = { v: EVENTS_VERSION, gateway: doc.gateway as string, epoch: doc.epoch as string, events };
  for (const key of ['after', 'confirmed'] as const) {
    const v = doc[key];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || (v as number) < 0) bad(`${key} must be an integer ≥ 0`);
    batch[key] = v as number;
  }
  if (batch.after !== undefined) {
    for (const e of events)
      if (e.id <= batch.after) bad(`event id ${e.id} is not after ${batch.after}, the id the batch starts after`);
  }
  return batch;
}
