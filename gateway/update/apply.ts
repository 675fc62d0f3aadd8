import {
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describeError, isLangbiangError, LangbiangError } from '../core/errors.js';
import { installRelease } from './install.js';
import { currentVersion, releaseDir, switchCurrent } from './layout.js';
import { readState, recordUpdateEvent, updateDir, writeState } from './state.js';
import type { BundleSummary, HealthBaseline, UpdateContext } from './types.js';
import { runningVersionOf, verifyBundleFile } from './verify.js';

/** Starts a new release may take (crash loop, watchdog kills) before the pre-start check rolls it back. */
export const DEFAULT_MAX_ATTEMPTS = 3;

/** Verify (signature with pinned release keys in DATA_DIR/trust/release/*.pem, checksums, arch, not a
 *  downgrade, store schema readable) and install side by side; switch `current`; record the pending
 *  confirmation. Throws LangbiangError with codes such as UPDATE_BAD_SIGNATURE, UPDATE_CORRUPT,
 *  UPDATE_DOWNGRADE, UPDATE_INCOMPATIBLE, UPDATE_NO_KEY. Records an `update` event in both cases. */
export async function applyUpdate(
  bundlePath: string,
  ctx: UpdateContext,
): Promise<{ version: string; previous: string | null }> {
  const now = ctx.now ?? Date.now;
  const source = ctx.source ?? 'cli';
  let version: string | undefined;
  let unlock: (() => void) | null = null;
  /** this call wrote the pending release (undone below when `current` did not move to it) */
  let wrotePending = false;
  try {
    unlock = lockInstall(ctx.dataDir);
    const pendingBefore = readState(ctx.dataDir).pending;
    if (pendingBefore)
      throw new LangbiangError(
        'UPDATE_FAILED',
        `release ${pendingBefore.version} is installed and not confirmed yet; wait for it to be confirmed or rolled back`,
      );
    const v = await verifyBundleFile(bundlePath, ctx);
    version = v.manifest.version;
    const baseline = await baselineOf(ctx);
    await installRelease(bundlePath, v, ctx.installRoot);
    // the release to go back to: the running one, if it is installed here (a first install has none)
    const previous =
      v.running !== version && existsSync(join(releaseDir(ctx.installRoot, v.running), 'bin', 'langbiang.js'))
        ? v.running
        : null;
    const at = new Date(now()).toISOString();
    const state = readState(ctx.dataDir);
    state.pending = {
      version,
      previous,
      attempts: 0,
      maxAttempts: ctx.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
      appliedAt: at,
      source,
      baseline,
    };
    state.last = { outcome: 'installed', version, previous, at };
    writeState(ctx.dataDir, state);
    wrotePending = true;
    // the switch comes last: until here, a failure leaves the running release as it was
    switchCurrent(ctx.installRoot, version);
    matchOwners(ctx, version);
    ctx.log.info({ version, previous, source }, `release ${version} installed; it starts next and must confirm itself`);
    recordUpdateEvent(ctx.dataDir, { outcome: 'installed', version, previous, source, at }, ctx.events);
    return { version, previous };
  } catch (err) {
    const e = isLangbiangError(err)
      ? err
      : new LangbiangError('UPDATE_FAILED', `update failed: ${describeError(err)}`, undefined, { cause: err });
    const at = new Date(now()).toISOString();
    if (!version && typeof e.details?.version === 'string') version = e.details.version;
    try {
      const state = readState(ctx.dataDir);
      // a failure after the pending release was written but before `current` moved to it (the
      // switch itself failed): nothing is pending, or every later update would be refused as
      // "not confirmed yet" and the pre-start check would wait for a start that never comes
      if (wrotePending && state.pending?.version === version && currentVersion(ctx.installRoot) !== version)
        delete state.pending;
      state.last = { outcome: 'refused', version: version ?? 'unknown', at, reason: e.code };
      writeState(ctx.dataDir, state);
      recordUpdateEvent(
        ctx.dataDir,
        {
          outcome: 'refused',
          ...(version ? { version } : {}),
          running: runningVersionOf(ctx),
          reason: e.code,
          message: e.message,
          source,
          at,
        },
        ctx.events,
      );
    } catch (recordErr) {
      ctx.log.warn({ err: describeError(recordErr) }, 'the refused update could not be recorded');
    }
    ctx.log.warn({ code: e.code, source }, `update refused: ${e.message}`);
    throw e;
  } finally {
    unlock?.();
  }
}

/**
 * One install at a time, whichever way it came in (a technician's CLI while the city's order is
 * downloading): `update/install.lock` holds the installer's pid; a lock whose process is gone
 * (a crash, a power cut) is taken over.
 */
function lockInstall(dataDir: string): () => void {
  const file = join(updateDir(dataDir), 'install.lock');
  mkdirSync(updateDir(dataDir), { recursive: true, mode: 0o750 });
  for (let tries = 0; tries < 2; tries++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o640 });
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && alive(pid))
        throw new LangbiangError(
          'UPDATE_FAILED',
          `another update is being installed (process ${pid}); try again when it is done`,
        );
      rmSync(file, { force: true });
    }
  }
  throw new LangbiangError('UPDATE_FAILED', `cannot take the install lock ${file}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The checks of applyUpdate that need no unpacking: signature, payload checksum, arch, version,
 *  store schema. Cheap enough to run after a download, before applying. */
export async function verifyBundle(bundlePath: string, ctx: UpdateContext): Promise<BundleSummary> {
  return (await verifyBundleFile(bundlePath, ctx)).summary;
}

async function baselineOf(ctx: UpdateContext): Promise<HealthBaseline | null> {
  const b = ctx.baseline;
  if (!b) return null;
  try {
    return typeof b === 'function' ? ((await b()) ?? null) : b;
  } catch (err) {
    ctx.log.warn(
      { err: describeError(err) },
      'the running release’s health could not be read; the new one is judged on its store and buses',
    );
    return null;
  }
}

/**
 * A technician runs `langbiang update apply` as root; the service runs as its own user and must
 * later confirm, prune and roll back what root installed: give the new release and the state the
 * owners of the directories they are in.
 */
function matchOwners(ctx: UpdateContext, version: string): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return;
  const chownTree = (path: string, uid: number, gid: number) => {
    const st = lstatSync(path);
    lchownSync(path, uid, gid);
    if (st.isDirectory()) for (const name of readdirSync(path)) chownTree(join(path, name), uid, gid);
  };
  try {
    const root = statSync(ctx.installRoot);
    chownTree(join(ctx.installRoot, 'releases', version), root.uid, root.gid);
    const data = statSync(ctx.dataDir);
    chownTree(updateDir(ctx.dataDir), data.uid, data.gid);
  } catch (err) {
    ctx.log.warn({ err: describeError(err) }, 'could not give the new release to the service user');
  }
}
