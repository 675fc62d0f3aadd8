import type Database from 'better-sqlite3';
import type { Clock } from '../core/clock.js';
import type { GapEvent } from '../core/reading.js';
import type { BatchTable } from './batch-table.js';
import type { EventLog } from './event-log.js';
import { prepareStatements } from './statements.js';
import type { TimestampIndex } from './timestamp-index.js';

const DEFAULT_AGE_CHECK_MS = 60_000;
/** Deleting down to this fraction of maxBytes makes cap deletions rare and large, not one per commit. */
const BYTE_CAP_LOW_WATER = 0.9;
const DELETE_CHUNK = 50_000;

export interface RetentionLimits {
  /** cap on the database file (bytes) */
  maxBytes?: number;
  /** readings older than this (wall ms) are dropped; only enforced while the clock is synchronised */
  maxAgeMs?: number;
  /** how often the age cap is checked after commits (default 60000 ms) */
  ageCheckIntervalMs?: number;
  clock?: Clock;
}

/** What retention needs of the store it works in. */
export interface RetentionHost {
  db: Database.Database;
  readonly: boolean;
  batches: BatchTable;
  events: EventLog;
  index: TimestampIndex;
  /** readings at or below this seq are confirmed by the city: dropping them is no gap */
  confirmedSeq(): number;
  /** runs fn in one write transaction that also carries the store's moved cursors */
  write(fn: () => void): void;
  /** a gap was recorded (committed) */
  onGap(gap: GapEvent): void;
  wallNow(): number;
  monoNow(): number;
}

/**
 * The byte cap and the age cap. The oldest readings go first, so the held seqs stay one contiguous
 * range; what the city had not confirmed is recorded as a gap (which is itself synced), what it
 * had is ordinary retention and records nothing.
 */
export class Retention {
  private lastAgeCheck = Number.NEGATIVE_INFINITY;
  private readonly pageSize: number;
  private readonly s;

  constructor(
    private readonly host: RetentionHost,
    private readonly limits: RetentionLimits,
  ) {
    const { db } = host;
    this.pageSize = db.pragma('page_size', { simple: true }) as number;
    this.s = prepareStatements(
      db,
      host.readonly,
      { pageCount: 'PRAGMA page_count', freelistCount: 'PRAGMA freelist_count' },
      { setSeqFloor: "UPDATE meta SET value = ? WHERE key = 'seq_floor' AND CAST(value AS INTEGER) < ?" },
    );
    // single-column reads return the value itself
    for (const single of [this.s.pageCount, this.s.freelistCount]) single.pluck();
  }

  /** After a commit: the byte cap every time (two header pragmas, cheap), the age cap now and then. */
  afterCommit(): void {
    const gaps: GapEvent[] = [];
    if (this.limits.maxAgeMs !== undefined) {
      const now = this.host.monoNow();
      if (now - this.lastAgeCheck >= (this.limits.ageCheckIntervalMs ?? DEFAULT_AGE_CHECK_MS)) {
        this.lastAgeCheck = now;
        this.enforceAgeCap(gaps);
      }
    }
    this.enforceByteCap(gaps);
  }

  /** Applies both caps now; returns the gaps recorded. */
  enforce(): GapEvent[] {
    const gaps: GapEvent[] = [];
    this.enforceAgeCap(gaps);
    this.enforceByteCap(gaps);
    return gaps;
  }

  /** Bytes of the database in use (pages not on the free list). */
  usedBytes(): number {
    const pages = this.s.pageCount.get() as number;
    const free = this.s.freelistCount.get() as number;
    return (pages - free) * this.pageSize;
  }

  private enforceByteCap(gaps: GapEvent[]): void {
    const maxBytes = this.limits.maxBytes;
    if (maxBytes === undefined) return;
    const { batches } = this.host;
    let used = this.usedBytes();
    if (used <= maxBytes) return;
    const lowWater = maxBytes * BYTE_CAP_LOW_WATER;
    for (let guard = 0; guard < 10_000 && used > lowWater; guard++) {
      const first = batches.minSeq();
      const last = batches.maxSeq();
      if (first === null || last === null) return;
      const perRow = used / (last - first + 1);
      // Rows share pages with their neighbours and the tree's inner pages: aim a quarter past the
      // estimate so one pass (one gap) usually does it.
      const n = Math.max(1, Math.min(DELETE_CHUNK, Math.ceil((1.25 * (used - lowWater)) / perRow)));
      this.deleteOldest(first, Math.min(last, first + n - 1), 'byte_cap', gaps);
      used = this.usedBytes();
    }
  }

  private enforceAgeCap(gaps: GapEvent[]): void {
    const maxAge = this.limits.maxAgeMs;
    if (maxAge === undefined) return;
    // With an unsynchronised clock "now" may be years off; dropping by it could wipe good data.
    if (this.limits.clock && !this.limits.clock.isSynced()) return;
    const { batches } = this.host;
    const cutoff = this.host.wallNow() - maxAge;
    for (;;) {
      const first = batches.minSeq();
      if (first === null) return;
      // Usually nothing is old enough: learn that from the oldest reading (one batch decoded), not
      // from a whole chunk (50,000 rows of garbage every minute: the gateway's RSS peaks).
      const oldest = batches.rows(first, Number.MAX_SAFE_INTEGER, 1)[0];
      if (!oldest || oldest.ts >= cutoff) return;
      const rows = batches.rows(first, Number.MAX_SAFE_INTEGER, DELETE_CHUNK);
      if (rows.length > DELETE_CHUNK) rows.length = DELETE_CHUNK;
      // Oldest first by seq: stop at the first reading still young enough, even if some behind it
      // carry older (unsynchronised) times, so the held seqs stay one contiguous range.
      let end = -1;
      for (const { seq, ts } of rows) {
        if (ts >= cutoff) break;
        end = seq;
      }
      if (end < 0) return;
      this.deleteOldest(first, end, 'age_cap', gaps);
      if (end !== rows[rows.length - 1]!.seq) return;
    }
  }

  /** Deletes seqs first..last; records a gap for the part the city had not confirmed. */
  private deleteOldest(first: number, last: number, reason: GapEvent['reason'], gaps: GapEvent[]): void {
    const { batches, events, index } = this.host;
    const confirmed = this.host.confirmedSeq();
    let gap: GapEvent | null = null;
    this.host.write(() => {
      if (confirmed >= first) batches.deleteRange(first, Math.min(last, confirmed));
      const from = Math.max(first, confirmed + 1);
      if (from <= last) {
        const cut = batches.deleteRange(from, last);
        if (cut.count > 0 && cut.lo !== null && cut.hi !== null)
          gap = events.recordGap({
            firstSeq: cut.lo,
            lastSeq: cut.hi,
            count: cut.count,
            reason,
            ts: this.host.wallNow(),
          });
      }
      // Seqs are never reused, even when every reading has been dropped.
      this.s.setSeqFloor.run(String(last), last);
      index.dropThrough(last);
    });
    if (gap) {
      gaps.push(gap);
      this.host.onGap(gap);
    }
  }
}
