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
  /** newest committed seq (0 when empty) */
  lastSeq(): number;
  getCursor(name: string): number;
  setCursor(name: string, seq: number): void;
  gapsAfter(afterId: number): GapEvent[];
}
