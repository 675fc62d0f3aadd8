import { resolve } from 'node:path';
import { describeError, isLangbiangError } from '../core/errors.js';
import { HttpError, objectBody, readJson } from './respond.js';
import type { Router } from './router.js';
import type { Deps } from './types.js';

/** The console's query box: at most this many rows are returned ("truncated" says there were more). */
export const SQL_ROW_LIMIT = 1000;
/** …and about this much of them as JSON (a farm's Wi-Fi, a phone's memory). */
export const SQL_BYTE_LIMIT = 4 * 1024 * 1024;
/** …and a query is stopped after this long, with one sentence saying so. */
export const SQL_TIME_LIMIT_MS = 5000;
const SQL_BODY_LIMIT = 16 * 1024;

/**
 * `POST /api/sql {sql}`: the read-only SQL view of `langbiang sql` (readings, events), for a
 * technician. One query at a time per gateway (a Pi has few cores, and polling needs one); it
 * runs off the event loop in a worker (store/sql-job.ts), so polling and storing go on meanwhile.
 */
export function registerSqlRoutes(r: Router, deps: Deps, opts: { timeLimitMs?: number } = {}): void {
  let running = false;
  r.post('/api/sql', 'technician', async ({ req, who }) => {
    const b = objectBody(await readJson(req, SQL_BODY_LIMIT));
    if (typeof b.sql !== 'string' || !b.sql.trim())
      throw new HttpError(400, 'sql is required: one SELECT, e.g. SELECT * FROM readings LIMIT 10');
    if (running) throw new HttpError(409, 'another SQL query is running on this gateway; try again when it ends');
    running = true;
    const timeoutMs = opts.timeLimitMs ?? SQL_TIME_LIMIT_MS;
    try {
      // the store's code (and the worker's) is loaded by the first query, not by every gateway (RSS target)
      const { runSqlJob } = await import('../store/sql-job.js');
      const res = await runSqlJob({
        dataDir: resolve(deps.gw.config.gateway.dataDir),
        sql: b.sql,
        limit: SQL_ROW_LIMIT,
        maxBytes: SQL_BYTE_LIMIT,
        timeoutMs,
      });
      deps.log.info(
        { by: who!.user, rows: res.rows.length, truncated: res.truncated, ms: res.ms },
        'console SQL query',
      );
      return { ...res, limit: SQL_ROW_LIMIT };
    } catch (err) {
      if (!isLangbiangError(err)) throw err;
      deps.log.info({ by: who!.user, code: err.code, err: describeError(err) }, 'console SQL query refused');
      if (err.code === 'USAGE') throw new HttpError(400, err.message);
      if (err.code === 'SQL_TIMEOUT') throw new HttpError(408, err.message, { timeLimitMs: timeoutMs });
      throw new HttpError(500, err.message);
    } finally {
      running = false;
    }
  });
}
