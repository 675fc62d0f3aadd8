import type { GapEvent, StoredReading } from './reading.js';

/**
 * What the sync agent sees of the store. cloud-sync never touches SQLite itself: it reads
 * through this interface and moves a durable cursor that only advances on PUBACK.
 */
export interface Outbox {
  /** random id made when the database was created; with seq it makes a reading unique */
  readonly epoch: string;
  /** readings with seq > afterSeq, oldest first, at most limit */
  readAfter(afterSeq: number, limit: number): StoredReading[];
  /**
   * The same readings (at most limit, seq ≤ maxSeq) as columns: the sync agent's fast path, no
   * object per reading. Optional: the agent falls back to readAfter without it.
   */
  readColumnsAfter?(afterSeq: number, limit: number, maxSeq: number): ReadingColumns;
  /** newest committed seq (0 when empty) */
  lastSeq(): number;
  getCursor(name: string): number;
  setCursor(name: string, seq: number): void;
  gapsAfter(afterId: number): GapEvent[];
}

/** A run of stored readings as columns, index i of every array being the same reading. */
export interface ReadingColumns {
  count: number;
  seqs: ArrayLike<number>;
  /** the store's series id of each reading; `names` resolves it */
  series: ArrayLike<number>;
  names: (series: number) => { device: string; point: string; unit: string | null };
  /** wall ms */
  ts: ArrayLike<number>;
  /** index in QUALITIES */
  quality: ArrayLike<number>;
  values: ArrayLike<number | string | null>;
  /**
   * How the store holds each number, when it knows: values[i] === scaled[i] / 10^decimals[i]
   * exactly where decimals[i] ≥ 0 (0 for integers), -1 for other values. Lets an encoder skip
   * searching for a scale.
   */
  decimals?: ArrayLike<number>;
  scaled?: ArrayLike<number>;
}

/** Events that are themselves synced to the city: gaps, command audit, alarms, config changes. */
export type GatewayEventKind = 'gap' | 'command' | 'alarm' | 'config' | 'flows' | 'clock' | 'refused' | 'update';

export interface GatewayEventRecord {
  /** event id, increasing, never reused (the events cursor moves over it) */
  id: number;
  kind: GatewayEventKind;
  /** wall ms */
  ts: number;
  data: Record<string, unknown>;
}

/** Where any part of the gateway records an event for the city (implemented by the store). */
export interface EventRecorder {
  recordEvent(kind: GatewayEventKind, data: Record<string, unknown>): number;
}

/** What the sync agent reads of events (implemented by the store). */
export interface EventOutbox {
  eventsAfter(afterId: number, limit: number): GatewayEventRecord[];
  lastEventId(): number;
}
