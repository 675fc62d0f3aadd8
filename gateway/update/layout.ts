import { existsSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fsyncDir } from '../provision/files.js';
import { isVersion } from './version.js';

/**
 * The install root's layout (docs/operations.md, "Updating gateways"):
 *
 *   <installRoot>/releases/<version>/   one release: bin/, dist/, node_modules/, package.json …
 *   <installRoot>/current -> releases/<version>   what the service runs (switched atomically)
 *   <installRoot>/bin/langbiang-prestart.mjs      the pre-start check, outside every release
 */
export function releasesDir(installRoot: string): string {
  return join(installRoot, 'releases');
}

export function releaseDir(installRoot: string, version: string): string {
  return join(releasesDir(installRoot), version);
}

export function currentLink(installRoot: string): string {
  return join(installRoot, 'current');
}

export function prestartPath(installRoot: string): string {
  return join(installRoot, 'bin', 'langbiang-prestart.mjs');
}

/** The version `current` points at, or null (no link, or not a releases/<version> target). */
export function currentVersion(installRoot: string): string | null {
  let target: string;
  try {
    target = readlinkSync(currentLink(installRoot));
  } catch {
    return null;
  }
  const v = basename(target);
  return isVersion(v) && basename(dirname(target)) === 'releases' ? v : null;
}

/**
 * Points `current` at releases/<version> in one step: a new link beside it, renamed over it
 * (rename(2) replaces atomically — a power cut leaves the old link or the new, never none).
 * The target is relative, so the install root can be moved or mounted elsewhere.
 */
export function switchCurrent(installRoot: string, version: string): void {
  const link = currentLink(installRoot);
  const tmp = `${link}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  symlinkSync(join('releases', version), tmp);
  renameSync(tmp, link);
  fsyncDir(installRoot); // the switch itself survives a power cut that follows it
}

/** The directory of the package this code runs from (…/releases/<version> when installed as a release). */
export function packageRoot(): string {
  return fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');
}

/** The version in a package's package.json (a release's is set by `langbiang release pack`). */
export function packageVersion(root = packageRoot()): string {
  try {
    const v = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: unknown }).version;
    return typeof v === 'string' ? v : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The install root this code runs in, or null when it does not run from releases/<version> (a checkout). */
export function installRootOf(root = packageRoot()): string | null {
  if (basename(dirname(root)) !== 'releases') return null;
  const installRoot = dirname(dirname(root));
  return existsSync(currentLink(installRoot)) ? installRoot : null;
}
