import { currentVersion, installRootOf, packageVersion } from './layout.js';
import { readState } from './state.js';
import type { UpdateContext, UpdateStatus } from './types.js';

/** What the console, /healthz, the retained status and `langbiang status` show. */
export function readUpdateStatus(ctx: Pick<UpdateContext, 'dataDir' | 'installRoot'>): UpdateStatus {
  const state = readState(ctx.dataDir);
  const running = currentVersion(ctx.installRoot) ?? packageVersion();
  const out: UpdateStatus = { running, previous: state.pending ? state.pending.previous : (state.previous ?? null) };
  if (state.pending) out.pending = { version: state.pending.version, attempts: state.pending.attempts };
  if (state.last) {
    const { outcome, version, at, reason } = state.last;
    out.last = { outcome, version, at, ...(reason ? { reason } : {}) };
  }
  return out;
}

/** The running gateway's own view: its install root, or none when it runs from a checkout. */
export function ownUpdateStatus(dataDir: string): UpdateStatus {
  const installRoot = installRootOf();
  if (!installRoot) {
    const state = readState(dataDir);
    return { running: packageVersion(), previous: null, ...(state.last ? { last: state.last } : {}) };
  }
  return { ...readUpdateStatus({ dataDir, installRoot }), running: packageVersion() };
}
