import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { loadReleaseKeys } from '../control-keys.js';
import { describeError, isLangbiangError, LangbiangError } from '../core/errors.js';
import { SCHEMA_VERSION, type StoreVersions, storeVersions } from '../store/index.js';
import { STORE_FILE } from '../store/store.js';
import { type Member, readMember, readMembers } from './container.js';
import { currentVersion, packageRoot, packageVersion, releaseDir } from './layout.js';
import { checkSignature, parseManifest, type ReleaseArch, type ReleaseManifest } from './manifest.js';
import { readState } from './state.js';
import type { BundleSummary, UpdateContext } from './types.js';
import { compareVersions } from './version.js';

/** This machine's architecture as a bundle names it (armv7 for 32-bit ARM: armhf Raspberry Pi OS). */
export function hostArch(): ReleaseArch | string {
  if (process.arch === 'x64') return 'x64';
  if (process.arch === 'arm64') return 'arm64';
  if (process.arch === 'arm') return 'armv7';
  return process.arch;
}

export interface VerifiedBundle {
  manifest: ReleaseManifest;
  manifestBytes: Buffer;
  payload: Member;
  running: string;
  summary: BundleSummary;
}

/** The running release: ctx.running, else what `current` points at, else this package's version. */
export function runningVersionOf(ctx: Pick<UpdateContext, 'installRoot' | 'running'>): string {
  return ctx.running ?? currentVersion(ctx.installRoot) ?? packageVersion();
}

function sha256File(file: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return null;
  }
}

/** The store's versions, read without disturbing a gateway that has it open (WAL); null: no store yet. */
export function currentStoreVersions(dataDir: string): StoreVersions | null {
  const file = join(dataDir, STORE_FILE);
  if (!existsSync(file)) return null;
  let db: Database.Database | null = null;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    return storeVersions(db);
  } catch (err) {
    throw new LangbiangError('UPDATE_FAILED', `cannot read the store's version (${file}): ${describeError(err)}`);
  } finally {
    db?.close();
  }
}

/**
 * Every check that needs no unpacking, in the order that refuses cheapest first: the container's
 * shape (a truncated download fails here), the signature over the manifest by a pinned release key,
 * the manifest itself, this machine (arch, Node), the version (no downgrade), the store (both this
 * release and the one it replaces can read it), and last the payload's sha256 (streamed).
 */
export async function verifyBundleFile(bundlePath: string, ctx: UpdateContext): Promise<VerifiedBundle> {
  const { members } = readMembers(bundlePath);
  const manifestMember = members.get('manifest.json')!;
  const manifestBytes = readMember(bundlePath, manifestMember);
  const sig = readMember(bundlePath, members.get('manifest.sig')!);
  const { keys, problems } = loadReleaseKeys(ctx.dataDir);
  for (const problem of problems) ctx.log.warn({ problem }, 'a pinned release key is unusable and ignored');
  const keyName = checkSignature(manifestBytes, sig, keys, bundlePath);
  // From here on the manifest is the city's: still checked, as a release tool can have bugs.
  const manifest = parseManifest(manifestBytes);
  try {
    return await checkRelease(bundlePath, ctx, manifest, manifestBytes, keyName, members.get('payload.tar.gz')!);
  } catch (err) {
    // the refusal names the release it refused
    if (isLangbiangError(err) && err.details?.version === undefined)
      throw new LangbiangError(
        err.code,
        err.message,
        { ...err.details, version: manifest.version },
        { cause: err.cause },
      );
    throw err;
  }
}

async function checkRelease(
  bundlePath: string,
  ctx: UpdateContext,
  manifest: ReleaseManifest,
  manifestBytes: Buffer,
  keyName: string,
  payload: Member,
): Promise<VerifiedBundle> {
  if (manifest.key !== keyName)
    throw new LangbiangError(
      'UPDATE_BAD_SIGNATURE',
      `${bundlePath}: the manifest names the key "${manifest.key}" but is signed by the pinned key "${keyName}"`,
    );
  if (payload.size !== manifest.payload.size)
    throw new LangbiangError(
      'UPDATE_CORRUPT',
      `${bundlePath}: the payload is ${payload.size} bytes, the manifest says ${manifest.payload.size}`,
    );
  const arch = ctx.arch ?? hostArch();
  if (manifest.arch !== arch)
    throw new LangbiangError(
      'UPDATE_WRONG_ARCH',
      `release ${manifest.version} is built for ${manifest.arch}, this gateway is ${arch}`,
    );
  if (compareVersions(process.versions.node, manifest.node.min) < 0)
    throw new LangbiangError(
      'UPDATE_INCOMPATIBLE',
      `release ${manifest.version} needs Node ${manifest.node.min} or newer, this gateway runs ${process.versions.node}`,
    );
  if (manifest.modules.included && manifest.node.abi !== process.versions.modules)
    throw new LangbiangError(
      'UPDATE_INCOMPATIBLE',
      `release ${manifest.version}'s native modules are built for Node ABI ${manifest.node.abi}, this gateway's Node is ABI ${process.versions.modules}`,
    );
  const running = runningVersionOf(ctx);
  checkVersionOrder(manifest.version, running, ctx);
  checkStore(manifest, ctx.dataDir);
  if (!manifest.modules.included) checkModulesReusable(manifest, running, ctx);
  // last, as it reads the whole payload
  const { hashMember } = await import('./container.js');
  const sha = await hashMember(bundlePath, payload);
  if (sha !== manifest.payload.sha256)
    throw new LangbiangError('UPDATE_CORRUPT', `${bundlePath}: the payload's checksum does not match the manifest`);
  return {
    manifest,
    manifestBytes,
    payload,
    running,
    summary: {
      version: manifest.version,
      arch: manifest.arch,
      keyName,
      reusesModules: !manifest.modules.included,
      size: payload.size,
    },
  };
}

/**
 * Only forward: a bundle not newer than the running release is refused, except the confirmed
 * previous release restored on purpose by a technician on site (ctx.allowDowngrade; never from
 * the network).
 */
function checkVersionOrder(version: string, running: string, ctx: UpdateContext): void {
  let order: number;
  try {
    order = compareVersions(version, running);
  } catch {
    order = 1; // a running version that is not semver (a development checkout): anything is newer
  }
  if (order > 0) return;
  if (order === 0)
    throw new LangbiangError('UPDATE_DOWNGRADE', `release ${version} is the one running; nothing to install`);
  const previous = readState(ctx.dataDir).previous ?? null;
  if (ctx.allowDowngrade && previous === version) return;
  throw new LangbiangError(
    'UPDATE_DOWNGRADE',
    ctx.allowDowngrade
      ? `release ${version} is older than the running ${running} and is not the confirmed previous release (${previous ?? 'none'}); only that one may be restored`
      : `release ${version} is older than the running ${running}; a downgrade is refused (a technician may restore the previous release with --allow-downgrade)`,
  );
}

/**
 * The store rule (docs/operations.md, "Store versions and rollback"): the new release must read
 * the store as it is, and the running release must read the store as the new one will leave it,
 * so a rollback never strands the readings stored in between.
 */
function checkStore(m: ReleaseManifest, dataDir: string): void {
  const store = currentStoreVersions(dataDir);
  if (store && store.readVersion > m.store.schema)
    throw new LangbiangError(
      'UPDATE_INCOMPATIBLE',
      `release ${m.version} cannot read this gateway's store (schema ${store.version} needs a reader of schema ${store.readVersion}; it knows ${m.store.schema})`,
    );
  if (m.store.readVersion > SCHEMA_VERSION)
    throw new LangbiangError(
      'UPDATE_INCOMPATIBLE',
      `release ${m.version} migrates the store to a form the running release (schema ${SCHEMA_VERSION}) cannot read, so it could not be rolled back; install a release that reads schema ${m.store.readVersion} first`,
    );
}

/** A bundle without node_modules reuses the running release's: only with the very same lockfile. */
function checkModulesReusable(m: ReleaseManifest, running: string, ctx: UpdateContext): void {
  const root = existsSync(releaseDir(ctx.installRoot, running)) ? releaseDir(ctx.installRoot, running) : null;
  const lock = root ? sha256File(join(root, 'package-lock.json')) : null;
  const modules = root ? existsSync(join(root, 'node_modules')) : false;
  if (!root || !modules || lock !== m.modules.lockSha256)
    throw new LangbiangError(
      'UPDATE_INCOMPATIBLE',
      `release ${m.version} comes without node_modules and reuses the installed release's, but ${
        !root
          ? `release ${running} is not installed under ${ctx.installRoot}`
          : !modules
            ? `${root} has no node_modules`
            : `its dependencies differ (package-lock.json); install the full bundle`
      }`,
    );
}

/** Used by the version shown when no install root is known (a development checkout). */
export function ownVersion(): string {
  return packageVersion(packageRoot());
}
