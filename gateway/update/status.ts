import type { UpdateContext, UpdateStatus } from './types.js';

/** What the console, /healthz, the retained status and `langbiang status` show. */
export function readUpdateStatus(ctx: Pick<UpdateContext, 'dataDir' | 'installRoot'>): UpdateStatus {
  void ctx;
  return { running: 'unknown', previous: null };
}
