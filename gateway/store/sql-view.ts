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

/** A read-only query's column names and rows; a statement that returns no rows is refused. */
export function runQuery(db: Database.Database, sql: string): { columns: string[]; rows: unknown[][] } {
  let stmt: Database.Statement;
  try {
    stmt = db.prepare(sql);
  } catch (err) {
    throw new LangbiangError('USAGE', `SQL: ${(err as Error).message}`);
  }
  if (!stmt.reader) throw new LangbiangError('USAGE', 'SQL: only queries that return rows (SELECT …) are run here');
  try {
    const columns = stmt.columns().map((c) => c.name);
    return { columns, rows: stmt.raw(true).all() as unknown[][] };
  } catch (err) {
    if (err instanceof LangbiangError) throw err;
    throw new LangbiangError('USAGE', `SQL: ${(err as Error).message}`);
  }
}
