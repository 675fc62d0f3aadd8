import { LangbiangError } from '../core/errors.js';
import {
  QUALITIES,
  type Quality,
  qualityCode,
  qualityFromCode,
  type Reading,
  type StoredReading,
} from '../core/reading.js';

/** A reading appended but not committed yet: checked, normalised, without a seq. */
export interface PendingReading {
  device: string;
  point: string;
  unit: string;
  value: number | string | null;
  /** quality code (core/reading.ts qualityCode) */
  quality: number;
  ts: number;
  mono: number;
  bootId: string;
  unsynced: boolean;
}

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
  return {
    device: r.device,
    point: r.point,
    unit: r.unit ?? '',
    value,
    quality: qualityCode(quality),
    ts: Math.trunc(r.ts),
    mono: Math.trunc(r.mono),
    bootId: r.bootId,
    unsynced: !r.synced,
  };
}

/** A pending reading as it reads back once committed with seq. */
export function pendingToStored(p: PendingReading, seq: number): StoredReading {
  const out: StoredReading = {
    seq,
    device: p.device,
    point: p.point,
    value: p.value,
    quality: qualityFromCode(p.quality),
    ts: p.ts,
    mono: p.mono,
    bootId: p.bootId,
    synced: !p.unsynced,
  };
  if (p.unit) out.unit = p.unit;
  return out;
}
