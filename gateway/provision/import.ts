import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { formatProblems, parseConfigText } from '../config/index.js';
import { describeError, LangbiangError } from '../core/errors.js';
import { KEY_NAME, parsePublicKey } from '../core/signed.js';
import {
  BUNDLE_DIR,
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  listFiles,
  type Manifest,
  SECRETS_SUBDIR,
  TRUST_SUBDIR,
} from './bundle.js';
import { fsyncDir, lookupOwner, type Owner, safeDir, sha256, writeFileAtomic } from './files.js';

/** Where a technician puts the bundle: the boot partition, as Raspberry Pi OS mounts it (bookworm, then older). */
export const BOOT_BUNDLE_PATHS = ['/boot/firmware/langbiang', '/boot/langbiang'];
/** Written into the data directory after an import: what was imported, when (no secrets). */
export const PROVISIONED_FILE = 'provisioned.json';

/** The bundle on the boot partition, if any: $LANGBIANG_BOOT_BUNDLE, else the conventional paths. */
export function findBootBundle(env: NodeJS.ProcessEnv = process.env): string | null {
  const candidates = env.LANGBIANG_BOOT_BUNDLE ? [env.LANGBIANG_BOOT_BUNDLE] : BOOT_BUNDLE_PATHS;
  for (const dir of candidates) if (existsSync(join(dir, 'manifest.json'))) return dir;
  return null;
}

export interface ImportOptions {
  /** the bundle folder (the `langbiang` folder itself, or the folder that holds it) */
  bundle: string;
  /** where the config goes */
  configFile: string;
  /** the service user that must own the secrets and read the config (when run as root) */
  owner?: string;
  /** delete the bundle after a good import (default true) */
  deleteBundle?: boolean;
}

export interface ImportResult {
  gateway: string;
  configFile: string;
  dataDir: string;
  secrets: string[];
  /** names of the city control keys pinned */
  controlKeys: string[];
  bundleDeleted: boolean;
}

/**
 * Imports a provisioning bundle: checks it whole first (manifest, checksums, a valid config) and
 * changes nothing when anything is wrong — the bundle stays where it is, to be fixed and tried
 * again. Then the secrets go into <dataDir>/secrets/ (0600, dir 0700, owned by the service user),
 * the config to its place (the previous one kept as .prev), and the bundle is deleted so no key
 * stays on the world-readable boot partition. Importing the same bundle again gives the same result.
 */
export function importBundle(o: ImportOptions): ImportResult {
  const dir = resolveBundleDir(o.bundle);
  try {
    return importFrom(dir, o);
  } catch (err) {
    // The boot partition is FAT: anyone on the gateway can read it. A bundle that failed stays
    // (its config and manifest say what went wrong) but its key and passwords do not.
    if (o.deleteBundle === false || !existsSync(join(dir, SECRETS_SUBDIR))) throw err;
    rmSync(join(dir, SECRETS_SUBDIR), { recursive: true, force: true });
    fsyncDir(dir);
    const why = err instanceof LangbiangError ? err.message : describeError(err);
    throw new LangbiangError(
      'BUNDLE_INVALID',
      `${why}\nIts secrets (keys, passwords, setup code) were deleted from ${dir}, where anyone could read them: copy a fresh bundle to try again.`,
    );
  }
}

function importFrom(dir: string, o: ImportOptions): ImportResult {
  const manifest = readManifest(dir);
  const owner: Owner | undefined = o.owner ? lookupOwner(o.owner) : undefined;
  const configFile = resolve(o.configFile);

  // 1. everything the manifest lists is there and intact (a card pulled out mid-copy is common)
  const present = new Set(listFiles(dir));
  for (const [rel, hash] of Object.entries(manifest.files)) {
    if (!present.has(rel)) throw bundleError(dir, `${rel} is missing`);
    if (sha256(readFileSync(join(dir, rel))) !== hash) throw bundleError(dir, `${rel} is damaged (checksum mismatch)`);
  }
  if (!manifest.files['config.yaml']) throw bundleError(dir, 'it has no config.yaml');

  // 2. the config is valid (its secret files are checked once they are in place)
  const text = readFileSync(join(dir, 'config.yaml'), 'utf8');
  const parsed = parseConfigText(text, { file: 'config.yaml', baseDir: dirname(configFile), checkFiles: false });
  if (!parsed.ok) {
    throw new LangbiangError(
      'BUNDLE_INVALID',
      `the bundle's config is invalid; nothing was imported and the bundle was left in ${dir}:\n${formatProblems(parsed.problems)}`,
    );
  }
  const config = parsed.config;
  if (config.gateway.id !== manifest.gateway) {
    throw bundleError(dir, `its config is for gateway ${config.gateway.id} but the manifest says ${manifest.gateway}`);
  }
  const dataDir = config.gateway.dataDir;
  const secretNames = Object.keys(manifest.files)
    .filter((rel) => rel.startsWith(`${SECRETS_SUBDIR}/`))
    .map((rel) => rel.slice(SECRETS_SUBDIR.length + 1));
  if (secretNames.some((n) => n.includes('/') || n.startsWith('.')))
    throw bundleError(dir, 'secrets/ may only hold plain files');
  const keyNames = Object.keys(manifest.files)
    .filter((rel) => rel.startsWith(`${TRUST_SUBDIR}/`))
    .map((rel) => rel.slice(TRUST_SUBDIR.length + 1));
  for (const n of keyNames) {
    if (!n.endsWith('.pem') || !KEY_NAME.test(n.slice(0, -4)))
      throw bundleError(dir, `${TRUST_SUBDIR}/ may only hold NAME.pem key files, not ${n}`);
    try {
      parsePublicKey(readFileSync(join(dir, TRUST_SUBDIR, n), 'utf8'));
    } catch (err) {
      throw bundleError(dir, `${TRUST_SUBDIR}/${n} is not an Ed25519 public key (${describeError(err)})`);
    }
  }

  // 3. secrets into the data directory, readable by the service alone
  const secretsDir = join(dataDir, SECRETS_SUBDIR);
  try {
    // no link is followed: the data directory belongs to the service user, the import runs as root
    safeDir(dataDir, 0o750, owner);
    safeDir(secretsDir, 0o700, owner);
    for (const name of secretNames) {
      writeFileAtomic(join(secretsDir, name), readFileSync(join(dir, SECRETS_SUBDIR, name)), 0o600, owner);
    }
    // the pinned city keys: readable by the service, written only here (root when run by the unit)
    if (keyNames.length > 0) {
      const trustDir = join(dataDir, TRUST_SUBDIR);
      safeDir(dirname(trustDir), 0o755);
      safeDir(trustDir, 0o755);
      for (const name of keyNames)
        writeFileAtomic(join(trustDir, name), readFileSync(join(dir, TRUST_SUBDIR, name)), 0o644);
    }
    // 4. the config to its place, keeping what was there
    mkdirSync(dirname(configFile), { recursive: true });
    if (existsSync(configFile)) copyFileSync(configFile, `${configFile}.prev`);
    writeFileAtomic(configFile, text, 0o640, owner ? { ...owner, uid: process.getuid?.() ?? owner.uid } : undefined);
  } catch (err) {
    throw new LangbiangError(
      'BUNDLE_INVALID',
      `cannot import the bundle (it was left in ${dir}): ${describeError(err)}`,
    );
  }

  // 5. with the secrets in place the config must be whole (TLS files readable…)
  const final = parseConfigText(text, { file: configFile, baseDir: dirname(configFile), checkFiles: true });
  if (!final.ok) {
    throw new LangbiangError(
      'BUNDLE_INVALID',
      `the imported config names files the bundle did not bring; the bundle was left in ${dir}:\n${formatProblems(final.problems)}`,
    );
  }
  writeFileAtomic(
    join(dataDir, PROVISIONED_FILE),
    `${JSON.stringify({ gateway: manifest.gateway, bundleCreatedAt: manifest.createdAt, importedAt: new Date().toISOString(), configFile, secrets: secretNames.sort() }, null, 2)}\n`,
    0o640,
    owner,
  );

  // 6. no key stays on the boot partition
  let bundleDeleted = false;
  if (o.deleteBundle !== false) {
    rmSync(dir, { recursive: true, force: true });
    fsyncDir(dirname(dir));
    bundleDeleted = !existsSync(dir);
  }
  return {
    gateway: manifest.gateway,
    configFile,
    dataDir,
    secrets: secretNames.sort(),
    controlKeys: keyNames.map((n) => n.slice(0, -4)).sort(),
    bundleDeleted,
  };
}

function resolveBundleDir(path: string): string {
  const abs = resolve(path);
  if (existsSync(join(abs, 'manifest.json'))) return abs;
  if (existsSync(join(abs, BUNDLE_DIR, 'manifest.json'))) return join(abs, BUNDLE_DIR);
  throw new LangbiangError('BUNDLE_INVALID', `${abs} is not a provisioning bundle (no manifest.json)`);
}

function readManifest(dir: string): Manifest {
  let m: Partial<Manifest>;
  try {
    m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Partial<Manifest>;
  } catch (err) {
    throw bundleError(dir, `manifest.json is unreadable (${describeError(err)})`);
  }
  if (m.format !== BUNDLE_FORMAT) throw bundleError(dir, 'manifest.json is not a Langbiang provisioning manifest');
  if (m.v !== BUNDLE_VERSION)
    throw bundleError(
      dir,
      `bundle format version ${String(m.v)} is not supported (this gateway reads ${BUNDLE_VERSION})`,
    );
  if (typeof m.gateway !== 'string' || typeof m.files !== 'object' || m.files === null)
    throw bundleError(dir, 'manifest.json lacks gateway or files');
  for (const rel of Object.keys(m.files)) {
    if (rel.startsWith('/') || rel.split('/').includes('..'))
      throw bundleError(dir, `manifest.json names a path outside the bundle: ${rel}`);
  }
  return m as Manifest;
}

function bundleError(dir: string, why: string): LangbiangError {
  return new LangbiangError('BUNDLE_INVALID', `the bundle in ${dir} cannot be imported: ${why}; nothing was changed`);
}

export function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
