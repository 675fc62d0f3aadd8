/**
 * One console SQL query in its own process (see sql-job.ts): its own read-only connection to the
 * store, the same SQL view as `langbiang sql`, at most `limit` rows. Reads one job from IPC,
 * answers once and exits; the gateway kills it when it runs too long.
 */
import { describeError, isLangbiangError } from '../core/errors.js';
import type { SqlJobAnswer, SqlJobInput } from './sql-job.js';
import { openSqlView, runQuery } from './sql-view.js';
import { Store } from './store.js';

/** JSON has no blobs: a BLOB cell is shown as SQLite writes one (X'0A1B'). */
function cell(v: unknown): unknown {
  if (v instanceof Uint8Array) return `X'${Buffer.from(v).toString('hex').toUpperCase()}'`;
  if (typeof v === 'bigint') return v.toString();
  return v;
}

function run(job: SqlJobInput): SqlJobAnswer {
  const store = Store.open({ dataDir: job.dataDir, readonly: true });
  try {
    const view = openSqlView(store);
    try {
      const r = runQuery(view, job.sql, { limit: job.limit, maxBytes: job.maxBytes });
      return { ok: true, columns: r.columns, rows: r.rows.map((row) => row.map(cell)), truncated: r.truncated };
    } finally {
      view.close();
    }
  } finally {
    store.close();
  }
}

// a gateway that went away takes its query with it
process.once('disconnect', () => process.exit(0));
process.once('message', (job: SqlJobInput) => {
  let answer: SqlJobAnswer;
  try {
    answer = run(job);
  } catch (err) {
    answer = { ok: false, code: isLangbiangError(err) ? err.code : 'INTERNAL', message: describeError(err) };
  }
  process.send?.(answer, () => process.exit(0));
});
