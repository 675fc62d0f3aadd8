import { qualityFromCode, type StoredReading } from '../core/reading.js';
import { isUnsynced, type RawRow } from './batch-codec.js';
import type { BatchTable } from './batch-table.js';
import type { QueryOptions } from './options.js';
import type { SeriesDictionary } from './series-dictionary.js';
import type { TimestampIndex } from './timestamp-index.js';

const PAGE_ROWS = 1000;

/**
 * Reading the store back: stored rows as readings (names instead of dictionary ids), queries by
 * device, point, time and seq, and the newest reading of each series (cached; the store tells it
 * of each commit and forgets it when a time correction rewrote readings).
 */
export class ReadingQueries {
  private latestBySeries: Map<string, StoredReading> | null = null;

  constructor(
    private readonly batches: BatchTable,
    private readonly dictionary: SeriesDictionary,
    private readonly index: TimestampIndex,
  ) {}

  /** A stored row as the reading it is. */
  toStored(r: RawRow): StoredReading {
    const series = this.dictionary.series(r.series);
    const bootId = this.dictionary.bootIdOf(r.boot);
    const out: StoredReading = {
      seq: r.seq,
      device: series?.device ?? `#${r.series}`,
      point: series?.point ?? `#${r.series}`,
      value: r.value,
      quality: qualityFromCode(r.quality),
      ts: r.ts,
      mono: r.mono,
      bootId: bootId ?? '',
      synced: !isUnsynced(r),
    };
    if (series?.unit) out.unit = series.unit;
    return out;
  }

  /**
   * Committed readings matching opts, by seq. Pages through the table (never holds a statement
   * open across a yield), so commits may happen while a caller iterates slowly.
   */
  *iterate(opts: QueryOptions): IterableIterator<StoredReading> {
    const desc = opts.order === 'desc';
    let remaining = opts.limit ?? Number.POSITIVE_INFINITY;
    if (remaining <= 0) return;
    let wanted: Set<number> | null = null;
    if (opts.device !== undefined || opts.point !== undefined) {
      const ids = this.dictionary.matching(opts.device, opts.point);
      if (ids.length === 0) return;
      wanted = new Set(ids);
    }
    const from = opts.from ?? Number.MIN_SAFE_INTEGER;
    const to = opts.to ?? Number.MAX_SAFE_INTEGER;
    const byTime = opts.from !== undefined || opts.to !== undefined;
    const ranges = this.index.seqRanges(byTime ? from : null, to, (opts.afterSeq ?? 0) + 1);
    if (desc) ranges.reverse();

    // What was committed when the iteration began: later commits belong to the next query.
    const top = this.batches.maxSeq() ?? 0;
    for (let [lo, hi] of ranges) {
      if (hi > top) hi = top;
      while (lo <= hi && remaining > 0) {
        // Whole batches are decoded, then filtered here; the next page starts past the last row seen.
        const rows = this.batches.rows(lo, hi, PAGE_ROWS, desc);
        if (rows.length === 0) break;
        for (const r of rows) {
          if (byTime && (r.ts < from || r.ts > to)) continue;
          if (wanted && !wanted.has(r.series)) continue;
          yield this.toStored(r);
          if (--remaining <= 0) return;
        }
        if (rows.length < PAGE_ROWS) break;
        if (desc) hi = rows[rows.length - 1]!.seq - 1;
        else lo = rows[rows.length - 1]!.seq + 1;
      }
    }
  }

  /** Newest committed reading of each device/point, sorted by device then point. */
  latest(): StoredReading[] {
    if (!this.latestBySeries) this.latestBySeries = this.scanLatest();
    return [...this.latestBySeries.values()].sort((a, b) =>
      a.device === b.device ? cmp(a.point, b.point) : cmp(a.device, b.device),
    );
  }

  /** Whether committed readings should be handed to noteCommitted (the latest cache exists). */
  tracksLatest(): boolean {
    return this.latestBySeries !== null;
  }

  /** Readings just committed, in seq order. */
  noteCommitted(stored: readonly StoredReading[]): void {
    if (!this.latestBySeries) return;
    for (const r of stored) this.latestBySeries.set(seriesKey(r.device, r.point), r);
  }

  /** Committed readings were rewritten (a time correction): the cache is rebuilt on next use. */
  forgetLatest(): void {
    this.latestBySeries = null;
  }

  private scanLatest(): Map<string, StoredReading> {
    const found = new Map<string, StoredReading>();
    const seenSeries = new Set<number>();
    this.dictionary.load();
    const total = this.dictionary.seriesCount;
    let below = Number.MAX_SAFE_INTEGER;
    // Newest first, page by page, until every known series has been seen: no index needed.
    while (seenSeries.size < total) {
      const rows = this.batches.rows(Number.MIN_SAFE_INTEGER, below - 1, PAGE_ROWS, true);
      if (rows.length === 0) break;
      for (const r of rows) {
        if (seenSeries.has(r.series)) continue;
        seenSeries.add(r.series);
        const sr = this.toStored(r);
        const key = seriesKey(sr.device, sr.point);
        const have = found.get(key);
        if (!have || have.seq < sr.seq) found.set(key, sr);
      }
      below = rows[rows.length - 1]!.seq;
    }
    return found;
  }
}

function seriesKey(device: string, point: string): string {
  return `${device}\u0000${point}`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
