import type { Clock } from '../core/clock.js';
import { LangbiangError } from '../core/errors.js';
import type { EventBus } from '../core/events.js';

export interface StoreOptions {
  dataDir: string;
  /** cap on the database file (bytes); the WAL adds at most about wal_autocheckpoint pages on top */
  maxBytes?: number;
  /** readings older than this (wall ms) are dropped; only enforced while the clock is synchronised */
  maxAgeMs?: number;
  synchronous?: 'full' | 'normal';
  /** commit when this many readings are buffered (default 500) */
  batchMaxReadings?: number;
  /** commit at the latest this long after the first buffered reading (default 1000) */
  batchMaxDelayMs?: number;
  clock?: Clock;
  /** receives 'gap' for each recorded gap and 'readings' for each committed batch */
  events?: EventBus;
  /** open an existing store for reading only (export while the gateway runs) */
  readonly?: boolean;
  /** when commits keep failing, buffered readings beyond this are dropped as an ingest_overflow gap (default 100000) */
  maxBufferedReadings?: number;
  /** how often the age cap is checked after commits (default 60000 ms) */
  ageCheckIntervalMs?: number;
  /** failures of background commits (timer-driven); default writes one line to stderr */
  onError?: (err: LangbiangError) => void;
}

export interface QueryOptions {
  device?: string;
  point?: string;
  /** wall ms, inclusive */
  from?: number;
  /** wall ms, inclusive */
  to?: number;
  limit?: number;
  afterSeq?: number;
  /** by seq; default 'asc' */
  order?: 'asc' | 'desc';
}

export interface StoreStats {
  /** committed readings held */
  readings: number;
  /** oldest held seq (0 when empty) */
  firstSeq: number;
  /** newest committed seq (0 before the first commit) */
  lastSeq: number;
  /** bytes of the database in use (pages not on the free list) */
  bytes: number;
  /** database file plus WAL file, as on disk */
  fileBytes: number;
  gaps: number;
  /** readings appended but not yet committed */
  buffered: number;
  /** write transactions committed by this Store instance */
  commits: number;
}

export interface CorrectionOptions {
  /** clear the unsynced flag of the corrected readings (default true) */
  markSynced?: boolean;
}

/** Refuses options that would make the store misbehave later, with the option's name. */
export function validateStoreOptions(o: StoreOptions): void {
  const bad = (msg: string): never => {
    throw new LangbiangError('STORE_FAILED', `store options: ${msg}`);
  };
  if (!o || typeof o.dataDir !== 'string' || o.dataDir === '') bad('dataDir must be a non-empty path');
  const positive: (keyof StoreOptions)[] = [
    'maxBytes',
    'maxAgeMs',
    'batchMaxReadings',
    'maxBufferedReadings',
    'ageCheckIntervalMs',
  ];
  for (const k of positive) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)))
      bad(`${k} must be a positive number, got ${String(v)}`);
  }
  const d = o.batchMaxDelayMs;
  if (d !== undefined && (typeof d !== 'number' || !(d >= 0) || !Number.isFinite(d)))
    bad(`batchMaxDelayMs must be >= 0, got ${String(d)}`);
  if (o.synchronous !== undefined && o.synchronous !== 'full' && o.synchronous !== 'normal') {
    bad(`synchronous must be 'full' or 'normal', got ${String(o.synchronous)}`);
  }
}
