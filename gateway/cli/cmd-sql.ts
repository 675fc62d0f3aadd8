import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LangbiangError } from '../core/errors.js';
import { STORE_FILE, Store } from '../store/index.js';
import { openSqlView, runQuery } from '../store/sql-view.js';
import { formatTable } from './output.js';

/**
 * `langbiang sql --data-dir DIR "SELECT …"`: read-only SQL over the store, for a technician with no
 * other tool at hand. Safe beside a running gateway (a read-only connection; SQLite WAL readers
 * never block the writer).
 */
export async function runSql(o: { dataDir: string; query: string; format: 'table' | 'csv' | 'jsonl' }): Promise<void> {
  const dir = resolve(o.dataDir);
  if (!existsSync(join(dir, STORE_FILE)))
    throw new LangbiangError('USAGE', `no gateway database in ${dir} (expected ${STORE_FILE})`);
  if (!o.query.trim()) throw new LangbiangError('USAGE', 'give the query, e.g. "SELECT * FROM readings LIMIT 10"');
  const store = Store.open({ dataDir: dir, readonly: true });
  const view = openSqlView(store);
  try {
    const { columns, rows } = runQuery(view, o.query);
    process.stdout.write(render(columns, rows, o.format));
  } finally {
    view.close();
    store.close();
  }
}

function render(columns: string[], rows: unknown[][], format: 'table' | 'csv' | 'jsonl'): string {
  if (format === 'jsonl') {
    return rows
      .map((r) => `${JSON.stringify(Object.fromEntries(columns.map((c, i) => [c, r[i] ?? null])))}\n`)
      .join('');
  }
  if (format === 'csv') {
    const cell = (v: unknown) => {
      const s = v === null || v === undefined ? '' : String(v);
      return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
    };
    return `${[columns.join(','), ...rows.map((r) => r.map(cell).join(','))].join('\n')}\n`;
  }
  const table = formatTable(
    columns,
    rows.map((r) =>
      r.map((v) => (v === null || v === undefined ? '' : typeof v === 'object' ? String(v) : (v as string | number))),
    ),
  );
  return `${table}\n(${rows.length} row${rows.length === 1 ? '' : 's'})\n`;
}
