import Database from 'better-sqlite3';
import { LangbiangError } from '../core/errors.js';
import { parseTimeArg } from '../time-arg.js';
import type { Store } from './store.js';

/**
 * SQL over the store for a technician (`langbiang sql`): the packed store's readings and events
 * appear as plain tables, in a separate in-memory SQLite connection, so a query can neither see
 * the store's internal layout nor write to it.
 *
 * - `readings(seq, device, point, ts, value, unit, quality)` — the export's columns: `ts` is ISO
 *   8601 UTC with milliseconds (so `ts >= '2026-12-01'` compares as text does), `value` in
 *   engineering units. Filtering with WHERE reads the whole store; the table-valued form
 *   `readings('soil-a1', '2026-12-01', '2026-12-02')` (device or '*', then optionally from and to,
 *   both inclusive) reads only that device and time range.
 * - `events(id, kind, ts, data)` — gaps, command audit, alarms, config changes; `data` is JSON
 *   text (`json_extract(data, '$.count')`).
 */
export function openSqlView(store: Store): Database.Database {
  const db = new Database(':memory:');
  db.table('readings', {
    columns: ['seq', 'device', 'point', 'ts', 'value', 'unit', 'quality'],
    parameters: ['_device', '_from', '_to'],
    *rows(device: unknown, from: unknown, to: unknown) {
      const rows = store.iterate({
        // '*' (or '') is any device: SQL's NULL would make the call match nothing
        device: typeof device === 'string' && device !== '*' && device !== '' ? device : undefined,
        from: timeParam('from', from),
        to: timeParam('to', to),
      });
      for (const r of rows) {
        yield {
          seq: r.seq,
          device: r.device,
          point: r.point,
          ts: new Date(r.ts).toISOString(),
          value: r.value,
          unit: r.unit ?? null,
          quality: r.quality,
        };
      }
    },
  });
  db.table('events', {
    columns: ['id', 'kind', 'ts', 'data'],
    *rows() {
      for (let after = 0; ; ) {
        const page = store.eventsAfter(after, 1000);
        if (page.length === 0) return;
        for (const e of page)
          yield { id: e.id, kind: e.kind, ts: new Date(e.ts).toISOString(), data: JSON.stringify(e.data) };
        after = page[page.length - 1]!.id;
      }
    },
  });
  // belt and braces: whatever a query says, this connection writes nothing (INSERT … RETURNING reads
  // too). A flag PRAGMA acts when prepared, so `PRAGMA query_only = OFF` would clear it — but that
  // statement is refused, and each view runs one statement (the CLI's, or one console query's).
  db.pragma('query_only = ON');
  return db;
}

function timeParam(name: string, v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  try {
    return parseTimeArg(String(v));
  } catch (err) {
    throw new LangbiangError('USAGE', `readings(…, ${name}): ${(err as Error).message}`);
  }
}

export interface QueryResult {
  columns: string[];
  rows: unknown[][];
  /** more rows than `limit` matched; only the first `limit` are in `rows` */
  truncated: boolean;
}

/** About what a cell costs as JSON text (a blob as hex). */
function cellBytes(v: unknown): number {
  if (typeof v === 'string') return v.length + 3;
  if (v instanceof Uint8Array) return 2 * v.length + 4;
  return 12;
}

/**
 * A read-only query's column names and rows (at most `limit` rows and about `maxBytes` of them,
 * when given: the rest is never read); a statement that returns no rows is refused.
 */
export function runQuery(
  db: Database.Database,
  sql: string,
  opts: { limit?: number; maxBytes?: number } = {},
): QueryResult {
  let stmt: Database.Statement;
  try {
    stmt = db.prepare(sql);
  } catch (err) {
    throw new LangbiangError('USAGE', `SQL: ${(err as Error).message}`);
  }
  if (!stmt.reader) throw new LangbiangError('USAGE', 'SQL: only queries that return rows (SELECT …) are run here');
  try {
    const columns = stmt.columns().map((c) => c.name);
    const limit = opts.limit ?? Number.POSITIVE_INFINITY;
    const maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
    const rows: unknown[][] = [];
    let truncated = false;
    let bytes = 0;
    for (const row of stmt.raw(true).iterate() as IterableIterator<unknown[]>) {
      bytes += row.reduce((n: number, v) => n + cellBytes(v), 0);
      if (rows.length >= limit || bytes > maxBytes) {
        truncated = true;
        break; // leaving the loop ends the statement: the rest is never computed
      }
      rows.push(row);
    }
    return { columns, rows, truncated };
  } catch (err) {
    if (err instanceof LangbiangError) throw err;
    throw new LangbiangError('USAGE', `SQL: ${(err as Error).message}`);
  }
}
