import { createWriteStream, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describeError, isLangbiangError } from '../core/errors.js';
import { HttpError } from './respond.js';
import type { Router } from './router.js';
import type { Deps } from './types.js';

/** A release bundle is tens of MB; a body larger than this is not one. */
export const UPLOAD_LIMIT = 512 * 1024 * 1024;

/**
 * The technician's way in on site: the console uploads a release bundle (the raw file, as
 * application/octet-stream — a cross-site form cannot send that type, and the session's CSRF token
 * is checked as for every POST). The body is streamed to a file under the data directory with a
 * cap, checked with the release key, installed; the gateway then restarts into the new release.
 */
export function registerUpdateRoutes(r: Router, deps: Deps): void {
  const { gw } = deps;
  /** an upload being received: bodies of up to UPLOAD_LIMIT each must not pile up on the data partition */
  let uploading = false;

  // beside GET /api/update (the releases: running, previous, pending): what the ways in are doing now
  r.get('/api/update/progress', 'technician', () => ({
    ...(gw.updates?.status() ?? { busy: false, source: null, version: null }),
    last: lastUpdateEvent(deps),
  }));

  r.post('/api/update', 'technician', async ({ req, res, who }) => {
    const updates = gw.updates;
    if (!updates) throw new HttpError(503, 'updates are not available on this gateway yet; try again in a moment');
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/octet-stream')
      throw new HttpError(415, 'send the bundle file itself as application/octet-stream');
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > UPLOAD_LIMIT) {
      req.resume();
      throw new HttpError(413, `the file is larger than ${UPLOAD_LIMIT} bytes; that is not a release bundle`);
    }
    if (updates.status().busy || uploading) {
      req.resume();
      throw new HttpError(409, 'another update is in progress; wait for its outcome', { update: updates.status() });
    }
    uploading = true;
    const dir = join(gw.config.gateway.dataDir, 'update', 'uploads');
    const file = join(dir, `upload-${Date.now()}-${process.pid}.lbr`);
    let size = 0;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o750 });
      // what an upload cut by a crash or a power loss left: nobody will ever read it
      for (const name of readdirSync(dir)) rmSync(join(dir, name), { force: true, recursive: true });
      await pipeline(
        req,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            size += chunk.length;
            if (size > UPLOAD_LIMIT)
              throw new HttpError(413, `the file is larger than ${UPLOAD_LIMIT} bytes; that is not a release bundle`);
            yield chunk;
          }
        },
        createWriteStream(file, { mode: 0o640 }),
      );
      if (size === 0) throw new HttpError(400, 'the upload is empty; choose a release bundle (.lbr) file');
      const r = await updates.installLocal(file, 'console', who!.user);
      res.statusCode = 200;
      return { installed: true, version: r.version, previous: r.previous, restarting: true };
    } catch (err) {
      if (err instanceof HttpError) throw err;
      if (isLangbiangError(err) && err.code === 'BUSY') throw new HttpError(409, err.message);
      // the bundle's problem in one sentence (bad signature, wrong architecture, a downgrade…)
      throw new HttpError(422, `not installed: ${describeError(err)}`);
    } finally {
      rmSync(file, { force: true });
      uploading = false;
    }
  });
}

/** The newest `update` event, for the console's "last update" line. */
function lastUpdateEvent(deps: Deps): Record<string, unknown> | null {
  try {
    const store = deps.gw.store;
    const events = store.eventsAfter(Math.max(0, store.lastEventId() - 500), 500);
    for (let i = events.length - 1; i >= 0; i--) {
      const e = events[i]!;
      if (e.kind === 'update') return { ...e.data, at: new Date(e.ts).toISOString() };
    }
  } catch {
    // the status line is a convenience; the events list has it too
  }
  return null;
}
