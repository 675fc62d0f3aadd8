import type Database from 'better-sqlite3';
import { BatchEncoder, ColumnBuilder, decodeBatch, hotDecodeColumns, type RawRow } from './batch-codec.js';
import { prepareStatements } from './statements.js';

interface BatchRow {
  seq: number;
  n: number;
  data: Buffer;
}

/** Batches fetched per statement call at first; doubled up to MAX_FETCH while a read goes on. */
const FIRST_FETCH = 2;
const MAX_FETCH = 64;

/**
 * The `batches` table (schema v3): one row per commit, keyed by its first seq, holding the packed
 * readings of consecutive seqs (batch-codec.ts). Reads decode whole rows and clip them to the seq
 * range asked for; deletions and corrections rewrite the rows they cut through.
 */
export class BatchTable {
  private readonly s;
  private readonly enc = new BatchEncoder();

  constructor(db: Database.Database, readonly: boolean) {
    this.s = prepareStatements(
      db,
      readonly,
      {
        floorKey: 'SELECT seq FROM batches WHERE seq <= ? ORDER BY seq DESC LIMIT 1',
        minSeq: 'SELECT min(seq) FROM batches',
        maxSeq: 'SELECT seq + n - 1 FROM batches ORDER BY seq DESC LIMIT 1',
        asc: 'SELECT seq, n, data FROM batches WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?',
        desc: 'SELECT seq, n, data FROM batches WHERE seq >= ? AND seq <= ? ORDER BY seq DESC LIMIT ?',
        extents: 'SELECT seq, n FROM batches WHERE seq >= ? AND seq <= ? ORDER BY seq',
        get: 'SELECT seq, n, data FROM batches WHERE seq = ?',
      },
      {
        insert: 'INSERT INTO batches (seq, n, data) VALUES (?, ?, ?)',
        update: 'UPDATE batches SET data = ? WHERE seq = ?',
        remove: 'DELETE FROM batches WHERE seq = ?',
      },
    );
    // single-column reads return the value itself
    for (const single of [this.s.floorKey, this.s.minSeq, this.s.maxSeq]) single.pluck();
  }

  /** The encoder commits fill reading by reading; `insertEncoded` writes what it holds. */
  encoder(): BatchEncoder {
    return this.enc;
  }

  insertEncoded(firstSeq: number): void {
    if (this.enc.count === 0) return;
    this.s.insert.run(firstSeq, this.enc.count, this.enc.finish());
  }

  insertRows(rows: readonly RawRow[]): void {
    if (rows.length === 0) return;
    this.enc.reset();
    for (const r of rows) this.enc.add(r);
    this.insertEncoded(rows[0]!.seq);
  }

  minSeq(): number | null {
    return (this.s.minSeq.get() as number | null | undefined) ?? null;
  }

  maxSeq(): number | null {
    return (this.s.maxSeq.get() as number | null | undefined) ?? null;
  }

  /**
   * Rows with lo ≤ seq ≤ hi in seq order (newest first when desc), whole batches at a time until
   * at least `want` rows are collected: a caller that needs more continues past the last row.
   */
  rows(lo: number, hi: number, want: number, desc = false): RawRow[] {
    const out: RawRow[] = [];
    const tmp: RawRow[] = [];
    this.scan(
      lo,
      hi,
      want,
      desc,
      () => out.length,
      (b) => {
        if (desc) {
          tmp.length = 0;
          decodeBatch(b.seq, b.data, tmp, lo, hi);
          for (let i = tmp.length - 1; i >= 0; i--) out.push(tmp[i]!);
        } else {
          decodeBatch(b.seq, b.data, out, lo, hi);
        }
      },
    );
    return out;
  }

  /** The same readings (oldest first) as columns: the sync agent's drain, no row per reading. */
  columns(lo: number, hi: number, want: number): ColumnBuilder {
    const out = new ColumnBuilder();
    this.scan(
      lo,
      hi,
      want,
      false,
      () => out.count,
      (b) => {
        out.reserve(Math.min(b.n, want - out.count));
        hotDecodeColumns(b.seq, b.data, out, lo, hi, want);
      },
    );
    return out;
  }

  /** Visits the batches that hold lo..hi in order, whole batches, until `have()` reaches `want`. */
  private scan(
    lo: number,
    hi: number,
    want: number,
    desc: boolean,
    have: () => number,
    visit: (b: BatchRow) => void,
  ): void {
    if (lo > hi || want <= 0) return;
    const start = (this.s.floorKey.get(lo) as number | undefined) ?? lo;
    let fetch = FIRST_FETCH;
    let from = start;
    let to = hi;
    for (;;) {
      const batches = (desc ? this.s.desc : this.s.asc).all(from, to, fetch) as BatchRow[];
      for (const b of batches) {
        visit(b);
        if (have() >= want) return;
      }
      if (batches.length < fetch) return;
      if (desc) to = batches[batches.length - 1]!.seq - 1;
      else from = batches[batches.length - 1]!.seq + 1;
      fetch = Math.min(MAX_FETCH, fetch * 2);
    }
  }

  /**
   * Deletes seqs first..last (a batch cut through keeps its other readings, re-encoded); returns
   * how many readings were deleted and the lowest and highest of them.
   */
  deleteRange(first: number, last: number): { count: number; lo: number | null; hi: number | null } {
    let count = 0;
    let lo: number | null = null;
    let hi: number | null = null;
    if (first > last) return { count, lo, hi };
    const start = (this.s.floorKey.get(first) as number | undefined) ?? first;
    for (const b of this.s.extents.all(start, last) as { seq: number; n: number }[]) {
      const end = b.seq + b.n - 1;
      if (end < first) continue;
      const cutLo = Math.max(first, b.seq);
      const cutHi = Math.min(last, end);
      count += cutHi - cutLo + 1;
      lo ??= cutLo;
      hi = cutHi;
      if (cutLo === b.seq && cutHi === end) {
        this.s.remove.run(b.seq);
        continue;
      }
      const row = this.s.get.get(b.seq) as BatchRow;
      const before: RawRow[] = [];
      const after: RawRow[] = [];
      decodeBatch(row.seq, row.data, before, b.seq, cutLo - 1);
      decodeBatch(row.seq, row.data, after, cutHi + 1, end);
      this.s.remove.run(b.seq);
      this.insertRows(before);
      this.insertRows(after);
    }
    return { count, lo, hi };
  }

  /**
   * Applies fn to every row with seq ≥ fromSeq, re-encoding the batches where it returned true;
   * returns the number of rows changed.
   */
  rewrite(fromSeq: number, fn: (row: RawRow) => boolean): number {
    let changed = 0;
    let from = (this.s.floorKey.get(fromSeq) as number | undefined) ?? fromSeq;
    const rows: RawRow[] = [];
    for (;;) {
      const batches = this.s.asc.all(from, Number.MAX_SAFE_INTEGER, MAX_FETCH) as BatchRow[];
      for (const b of batches) {
        rows.length = 0;
        decodeBatch(b.seq, b.data, rows);
        let any = false;
        for (const r of rows)
          if (r.seq >= fromSeq && fn(r)) {
            any = true;
            changed++;
          }
        if (any) {
          this.enc.reset();
          for (const r of rows) this.enc.add(r);
          this.s.update.run(this.enc.finish(), b.seq);
        }
      }
      if (batches.length < MAX_FETCH) return changed;
      from = batches[batches.length - 1]!.seq + 1;
    }
  }
}
