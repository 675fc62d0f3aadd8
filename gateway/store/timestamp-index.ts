import type Database from 'better-sqlite3';
import type { BatchTable } from './batch-table.js';
import { prepareStatements } from './statements.js';

/** Seqs per ts_blocks row (see schema.ts). */
export const TS_BLOCK_SIZE = 1024;
const PAGE_ROWS = 1000;

/** The min and max ts seen so far in one block of seqs. */
export interface BlockSpan {
  /** block number (seq / TS_BLOCK_SIZE), -1 for none */
  block: number;
  min: number;
  max: number;
}

/**
 * `ts_blocks`: the min and max wall time of each complete block of TS_BLOCK_SIZE seqs, one row per
 * 1024 readings, so a time-range query visits only the blocks that can match. It stays correct
 * when the wall clock went backwards (a min/max, not an ordering). The newest, incomplete block has
 * no row: its span is kept here in memory and read whole by queries.
 */
export class TimestampIndex {
  /** the incomplete newest block */
  private open: BlockSpan = emptySpan(-1);
  private readonly s;

  constructor(
    db: Database.Database,
    private readonly readonly: boolean,
    private readonly batches: BatchTable,
  ) {
    this.s = prepareStatements(
      db,
      readonly,
      {
        blocksIn: 'SELECT block FROM ts_blocks WHERE min_ts <= ? AND max_ts >= ? ORDER BY block',
        maxBlock: 'SELECT max(block) FROM ts_blocks',
      },
      {
        putBlock: 'INSERT OR REPLACE INTO ts_blocks (block, min_ts, max_ts) VALUES (?, ?, ?)',
        deleteBlocksBelow: 'DELETE FROM ts_blocks WHERE block < ?',
      },
    );
    // single-column reads return the value itself
    for (const single of [this.s.blocksIn, this.s.maxBlock]) single.pluck();
  }

  /** Reads the span of the block that holds maxSeq (the newest committed seq, null when empty). */
  loadOpenBlock(maxSeq: number | null): void {
    if (!maxSeq) {
      this.open = emptySpan(-1);
      return;
    }
    const span = emptySpan(Math.floor(maxSeq / TS_BLOCK_SIZE));
    for (const { ts } of this.batches.rows(span.block * TS_BLOCK_SIZE, Number.MAX_SAFE_INTEGER, TS_BLOCK_SIZE)) {
      if (ts < span.min) span.min = ts;
      if (ts > span.max) span.max = ts;
    }
    this.open = span;
  }

  /** A copy of the open block's span, for a commit to extend (adopt it once the commit succeeded). */
  stage(): BlockSpan {
    return { ...this.open };
  }

  /**
   * Counts a reading into a staged span; when its seq starts a new block, the completed one gets
   * its row. Call inside the commit's transaction.
   */
  add(span: BlockSpan, seq: number, ts: number): void {
    const b = Math.floor(seq / TS_BLOCK_SIZE);
    if (b !== span.block) {
      if (span.block >= 0 && span.min <= span.max) this.s.putBlock.run(span.block, span.min, span.max);
      span.block = b;
      span.min = Number.POSITIVE_INFINITY;
      span.max = Number.NEGATIVE_INFINITY;
    }
    if (ts < span.min) span.min = ts;
    if (ts > span.max) span.max = ts;
  }

  /** The commit that extended span is durable: span is the open block now. */
  adopt(span: BlockSpan): void {
    this.open = span;
  }

  /** Readings up to lastSeq were deleted: drop the rows of the blocks wholly below it. */
  dropThrough(lastSeq: number): void {
    this.s.deleteBlocksBelow.run(Math.floor((lastSeq + 1) / TS_BLOCK_SIZE));
  }

  /**
   * Recomputes the rows of the complete blocks from the one holding fromSeq up to the open block
   * (exclusive), from the readings: after a time correction rewrote their ts.
   */
  rebuildFrom(fromSeq: number): void {
    let lo = Math.floor(fromSeq / TS_BLOCK_SIZE) * TS_BLOCK_SIZE;
    const hi = this.open.block * TS_BLOCK_SIZE - 1;
    let span = emptySpan(-1);
    const put = () => {
      if (span.block >= 0 && span.min <= span.max) this.s.putBlock.run(span.block, span.min, span.max);
    };
    while (lo <= hi) {
      const rows = this.batches.rows(lo, hi, PAGE_ROWS);
      if (rows.length === 0) break;
      for (const { seq, ts } of rows) {
        const b = Math.floor(seq / TS_BLOCK_SIZE);
        if (b !== span.block) {
          put();
          span = emptySpan(b);
        }
        if (ts < span.min) span.min = ts;
        if (ts > span.max) span.max = ts;
      }
      lo = rows[rows.length - 1]!.seq + 1;
    }
    put();
  }

  /** Seq ranges that can hold readings with ts in [from, to] (all seqs from minSeq when from is null). */
  seqRanges(from: number | null, to: number, minSeq: number): [number, number][] {
    const top = Number.MAX_SAFE_INTEGER;
    if (from === null) return minSeq <= top ? [[minSeq, top]] : [];
    const ranges: [number, number][] = [];
    for (const block of this.s.blocksIn.all(to, from) as number[]) {
      const lo = Math.max(minSeq, block * TS_BLOCK_SIZE);
      const hi = block * TS_BLOCK_SIZE + TS_BLOCK_SIZE - 1;
      if (lo > hi) continue;
      const prev = ranges[ranges.length - 1];
      if (prev && prev[1] + 1 >= lo) prev[1] = hi;
      else ranges.push([lo, hi]);
    }
    // The incomplete newest block (and whatever a concurrent writer added since) has no row yet.
    const tail = this.readonly ? this.readonlyTailBlock() : this.open.block;
    if (tail >= 0) {
      const lo = Math.max(minSeq, tail * TS_BLOCK_SIZE);
      const prev = ranges[ranges.length - 1];
      if (prev && prev[1] + 1 >= lo) prev[1] = top;
      else ranges.push([lo, top]);
    }
    return ranges;
  }

  /** A read-only connection does not see the writer's open block: everything past the last row. */
  private readonlyTailBlock(): number {
    const b = this.s.maxBlock.get() as number | null;
    return b === null ? 0 : b + 1;
  }
}

function emptySpan(block: number): BlockSpan {
  return { block, min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY };
}
