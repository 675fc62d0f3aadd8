import { LangbiangError } from '../core/errors.js';
import { QUALITIES, type Quality, type Reading, type StoredReading } from '../core/reading.js';

/**
 * A reading appended but not committed yet: checked, normalised, already in the form the store
 * hands out once committed (a StoredReading whose seq is 0 until its commit numbers it). The same
 * object goes from append() to the 'readings' event and the latest cache: one object per reading,
 * not two. Polling 500 points, each of them lives a second or two (the batch delay, then the
 * latest cache), long enough to reach V8's old generation, so every copy per reading was garbage
 * that only a full collection frees — the height of the gateway's RSS saw-tooth.
 */
export type PendingReading = StoredReading;

const QUALITY_SET = new Set<string>(QUALITIES);

/** Checks a reading handed to append() (the i-th) and brings it to the form the store keeps. */
export function toPending(r: Reading, i: number): PendingReading {
  const bad = (what: string): never => {
    throw new LangbiangError('STORE_FAILED', `reading ${i} (${String(r?.device)}/${String(r?.point)}): ${what}`);
  };
  if (!r || typeof r !== 'object') bad('not an object');
  if (typeof r.device !== 'string' || r.device === '') bad('device must be a non-empty string');
  if (typeof r.point !== 'string' || r.point === '') bad('point must be a non-empty string');
  if (!QUALITY_SET.has(r.quality)) bad(`unknown quality ${JSON.stringify(r.quality)}`);
  if (!Number.isFinite(r.ts)) bad('ts must be a finite number');
  if (!Number.isFinite(r.mono)) bad('mono must be a finite number');
  if (typeof r.bootId !== 'string') bad('bootId must be a string');
  let value: number | string | null = r.value;
  let quality: Quality = r.quality;
  if (typeof value === 'boolean') value = value ? 1 : 0;
  if (typeof value === 'number' && !Number.isFinite(value)) {
    // Infinity has no place in CSV/JSON exports; NaN would silently become NULL in SQLite anyway.
    value = null;
    if (quality === 'good') quality = 'decode_error';
  }
  if (value !== null && typeof value !== 'number' && typeof value !== 'string')
    bad('value must be a number, a string or null');
  const out: PendingReading = {
    seq: 0,
    device: r.device,
    point: r.point,
    value,
    quality,
    ts: Math.trunc(r.ts),
    mono: Math.trunc(r.mono),
    bootId: r.bootId,
    synced: Boolean(r.synced),
  };
  if (r.unit) out.unit = r.unit;
  return out;
}
