import { type KeyObject, sign, verify } from 'node:crypto';
import { posix } from 'node:path';
import { LangbiangError } from '../core/errors.js';
import { KEY_NAME } from '../core/signed.js';
import { isVersion } from './version.js';

/**
 * The signed description of a release bundle (docs/operations.md, "Updating gateways"). The
 * signature (`manifest.sig`: 64 raw bytes, Ed25519 by a release key) covers the exact bytes of
 * `manifest.json`, and the manifest holds the sha256 and size of the payload archive and of every
 * file in it — so one signature check vouches for every byte that becomes a release.
 */
export const MANIFEST_FORMAT = 1;
export const ARCHES = ['x64', 'arm64', 'armv7'] as const;
export type ReleaseArch = (typeof ARCHES)[number];

export interface ManifestFile {
  /** relative, '/'-separated, inside the release */
  path: string;
  size: number;
  sha256: string;
  /** executable bit */
  exec?: boolean;
}

export interface ManifestLink {
  path: string;
  /** a relative target that stays inside the release (node_modules/.bin) */
  link: string;
}

export interface ReleaseManifest {
  format: 1;
  product: 'langbiang';
  version: string;
  platform: 'linux';
  arch: ReleaseArch;
  node: {
    /** process.versions.modules of the Node the native modules were built for */
    abi: string;
    /** lowest Node version the release runs on */
    min: string;
  };
  store: {
    /** the store schema version this release migrates to and writes */
    schema: number;
    /** the lowest schema version a release must know to read what this one writes */
    readVersion: number;
  };
  createdAt: string;
  /** name of the release key that signed it (trust/release/NAME.pem on the gateway) */
  key: string;
  payload: { size: number; sha256: string };
  modules: {
    /** node_modules is in the payload; false: the installed release's are reused (same lockfile) */
    included: boolean;
    /** sha256 of the release's package-lock.json */
    lockSha256: string;
  };
  files: ManifestFile[];
  links: ManifestLink[];
}

const HEX64 = /^[0-9a-f]{64}$/;
const TOP_KEYS = new Set([
  'format',
  'product',
  'version',
  'platform',
  'arch',
  'node',
  'store',
  'createdAt',
  'key',
  'payload',
  'modules',
  'files',
  'links',
]);

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

function bad(why: string): LangbiangError {
  return new LangbiangError('UPDATE_CORRUPT', `release manifest: ${why}`);
}

/**
 * A path the release may hold: relative, normalised, no `..`, no empty or dot segments, printable.
 * Refused before anything is unpacked, so an archive entry can never land outside the release.
 */
export function isSafeRelativePath(p: unknown): p is string {
  if (typeof p !== 'string' || p.length === 0 || p.length > 1024) return false;
  if (p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(p)) return false;
  return p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

/** A symlink's target stays inside the release when resolved from the link's directory. */
export function linkStaysInside(path: string, target: string): boolean {
  if (typeof target !== 'string' || target.length === 0 || target.startsWith('/') || target.includes('\0'))
    return false;
  const resolved = posix.normalize(posix.join(posix.dirname(path), target));
  return resolved !== '..' && !resolved.startsWith('../') && !resolved.startsWith('/');
}

/** Parses and checks the manifest's bytes (after the signature matched). */
export function parseManifest(bytes: Buffer): ReleaseManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw bad('not JSON');
  }
  if (!isObject(doc)) throw bad('not a JSON object');
  for (const k of Object.keys(doc)) if (!TOP_KEYS.has(k)) throw bad(`unknown key "${k.slice(0, 40)}"`);
  if (doc.format !== MANIFEST_FORMAT) throw bad(`format must be ${MANIFEST_FORMAT} (a newer bundle format?)`);
  if (doc.product !== 'langbiang') throw bad('not a Langbiang release');
  if (!isVersion(doc.version)) throw bad('version must be major.minor.patch');
  if (doc.platform !== 'linux') throw bad('platform must be linux');
  if (!ARCHES.includes(doc.arch as ReleaseArch)) throw bad(`arch must be one of ${ARCHES.join(', ')}`);
  const node = doc.node;
  if (!isObject(node) || typeof node.abi !== 'string' || !/^\d{1,4}$/.test(node.abi) || !isVersion(node.min))
    throw bad('node must be { abi, min }');
  const store = doc.store;
  if (
    !isObject(store) ||
    !Number.isSafeInteger(store.schema) ||
    !Number.isSafeInteger(store.readVersion) ||
    (store.readVersion as number) < 0 ||
    (store.readVersion as number) > (store.schema as number)
  )
    throw bad('store must be { schema, readVersion } with readVersion ≤ schema');
  if (typeof doc.createdAt !== 'string' || Number.isNaN(Date.parse(doc.createdAt)))
    throw bad('createdAt must be a time');
  if (typeof doc.key !== 'string' || !KEY_NAME.test(doc.key)) throw bad('key must be a key name');
  const payload = doc.payload;
  if (!isObject(payload) || !Number.isSafeInteger(payload.size) || typeof payload.sha256 !== 'string')
    throw bad('payload must be { size, sha256 }');
  if (!HEX64.test(payload.sha256)) throw bad('payload.sha256 must be 64 hex digits');
  const modules = doc.modules;
  if (!isObject(modules) || typeof modules.included !== 'boolean' || typeof modules.lockSha256 !== 'string')
    throw bad('modules must be { included, lockSha256 }');
  if (!HEX64.test(modules.lockSha256)) throw bad('modules.lockSha256 must be 64 hex digits');
  if (!Array.isArray(doc.files) || !Array.isArray(doc.links)) throw bad('files and links must be lists');
  const seen = new Set<string>();
  const claim = (p: string) => {
    if (seen.has(p)) throw bad(`${p} is listed twice`);
    seen.add(p);
  };
  for (const f of doc.files as unknown[]) {
    if (!isObject(f) || !isSafeRelativePath(f.path))
      throw bad(
        `a file path is not a plain relative path inside the release: ${JSON.stringify(isObject(f) ? f.path : f)?.slice(0, 80)}`,
      );
    if (
      !Number.isSafeInteger(f.size) ||
      (f.size as number) < 0 ||
      typeof f.sha256 !== 'string' ||
      !HEX64.test(f.sha256)
    )
      throw bad(`${f.path}: size and sha256 are needed`);
    if (f.exec !== undefined && typeof f.exec !== 'boolean') throw bad(`${f.path}: exec must be true or false`);
    claim(f.path);
  }
  for (const l of doc.links as unknown[]) {
    if (!isObject(l) || !isSafeRelativePath(l.path) || typeof l.link !== 'string')
      throw bad('a link entry is not { path, link } with a relative path');
    if (!linkStaysInside(l.path, l.link)) throw bad(`${l.path} links out of the release (${l.link.slice(0, 80)})`);
    claim(l.path);
  }
  const has = (p: string) => seen.has(p);
  if (!has('bin/langbiang.js') || !has('package.json')) throw bad('bin/langbiang.js and package.json must be in it');
  if (!modules.included && [...seen].some((p) => p === 'node_modules' || p.startsWith('node_modules/')))
    throw bad('modules.included is false but node_modules files are listed');
  return doc as unknown as ReleaseManifest;
}

export function signManifest(bytes: Buffer, key: KeyObject): Buffer {
  return sign(null, bytes, key);
}

/**
 * Which pinned key, if any, signed these bytes. Every pinned key is tried on the raw bytes (a
 * handful of Ed25519 checks): nothing of the manifest is parsed before one matches, so bytes that
 * no release key vouches for never reach JSON.parse — a 32 MB manifest of tiny objects would cost
 * more memory than the service may use. The manifest's own `key` must then name that key.
 */
export function checkSignature(bytes: Buffer, sig: Buffer, keys: ReadonlyMap<string, KeyObject>, file: string): string {
  if (keys.size === 0)
    throw new LangbiangError(
      'UPDATE_NO_KEY',
      `no release key is pinned on this gateway (trust/release/NAME.pem in the data directory), so ${file} cannot be trusted`,
    );
  if (sig.length === 64)
    for (const [name, key] of keys) {
      let good = false;
      try {
        good = verify(null, bytes, key, sig);
      } catch {
        good = false;
      }
      if (good) return name;
    }
  throw new LangbiangError(
    'UPDATE_BAD_SIGNATURE',
    `${file}: the signature does not match the manifest under any release key pinned on this gateway (tampered with, or signed by another key)`,
  );
}
