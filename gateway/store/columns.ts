import type { ReadingColumns } from '../core/outbox.js';
import type { RawRow } from './batch-codec.js';

/**
 * Stored rows as the sync agent's columns (Outbox.readColumnsAfter): the wire needs seq, series,
 * ts, quality and value only, and a backlog drain moves millions of readings, so it gets plain
 * arrays instead of an object with device/point/unit strings per reading.
 */
export function toColumns(rows: readonly RawRow[], names: ReadingColumns['names']): ReadingColumns {
  const n = rows.length;
  const seqs = new Array<number>(n);
  const series = new Array<number>(n);
  const ts = new Array<number>(n);
  const quality = new Array<number>(n);
  const values = new Array<number | string | null>(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    seqs[i] = r.seq;
    series[i] = r.series;
    ts[i] = r.ts;
    values[i] = r.value;
    quality[i] = r.quality;
  }
  return { count: n, seqs, series, names, ts, quality, values };
}
