import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type ErrorCode, LangbiangError } from '../core/errors.js';

/**
 * A read-only SQL query for the technician console, with a row limit and a time limit.
 * better-sqlite3 runs a query synchronously, so on the gateway's own thread a slow GROUP BY would
 * stop polling. It runs in a child process instead, with its own read-only connection (SQLite WAL
 * readers never block the writer), killed (SIGKILL) when it runs past the time limit.
 *
 * Why not a worker thread: a worker can only be stopped between JavaScript steps, and a query
 * such as a recursive CTE runs entirely inside SQLite's C code — terminate() returns, and the
 * thread goes on using a core until the query ends, which may be never. better-sqlite3 has no
 * sqlite3_interrupt. A process can always be killed.
 */

export interface SqlJobInput {
  dataDir: string;
  sql: string;
  /** at most this many rows… */
  limit: number;
  /** …and about this much JSON */
  maxBytes: number;
}

export type SqlJobAnswer =
  | { ok: true; columns: string[]; rows: unknown[][]; truncated: boolean }
  | { ok: false; code: ErrorCode; message: string };

export interface SqlJobResult {
  columns: string[];
  rows: unknown[][];
  truncated: boolean;
  ms: number;
}

/** Thrown when the time limit stopped the query. */
export class SqlTimeoutError extends LangbiangError {
  constructor(readonly limitMs: number) {
    super(
      'SQL_TIMEOUT',
      `the query ran longer than ${limitMs / 1000} s and was stopped; narrow it, e.g. FROM readings('device-id', '-24h')`,
    );
  }
}

// compiled, the worker sits beside this file; from source (vitest), it is the compiled one in dist/
const WORKER = fileURLToPath(
  import.meta.url.endsWith('.ts')
    ? new URL('../../dist/gateway/store/sql-worker.js', import.meta.url)
    : new URL('./sql-worker.js', import.meta.url),
);
/** a query's heap is its result rows; past this the query's process dies, not the gateway */
const WORKER_HEAP_MB = 64;

/** Runs one query in its own process and answers its rows, or a typed error (SQL_TIMEOUT at the limit). */
export function runSqlJob(job: SqlJobInput & { timeoutMs: number }): Promise<SqlJobResult> {
  const started = Date.now();
  const child = fork(WORKER, [], {
    execArgv: [`--max-old-space-size=${WORKER_HEAP_MB}`],
    // none of the gateway's environment (it may hold secrets); the query needs none
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 4000) stderr += d.toString();
  });
  return new Promise<SqlJobResult>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      settle(() => reject(new SqlTimeoutError(job.timeoutMs)));
    }, job.timeoutMs);
    child.once('message', (a: SqlJobAnswer) =>
      settle(() =>
        a.ok
          ? resolve({ columns: a.columns, rows: a.rows, truncated: a.truncated, ms: Date.now() - started })
          : reject(new LangbiangError(a.code, a.message)),
      ),
    );
    child.once('error', (err) =>
      settle(() => reject(new LangbiangError('INTERNAL', `the query could not run: ${err.message}`))),
    );
    child.once('exit', (code, signal) =>
      settle(() =>
        reject(
          new LangbiangError(
            'INTERNAL',
            /heap out of memory|Allocation failed/i.test(stderr)
              ? `the query needed more than ${WORKER_HEAP_MB} MB and was stopped; add a LIMIT or aggregate`
              : `the query stopped without an answer (${signal ?? `exit ${code}`})`,
          ),
        ),
      ),
    );
    child.send({ dataDir: job.dataDir, sql: job.sql, limit: job.limit, maxBytes: job.maxBytes } satisfies SqlJobInput);
  });
}
