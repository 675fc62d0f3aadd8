import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  createReadStream,
  createWriteStream,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statfsSync,
  symlinkSync,
} from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { LangbiangError } from '../core/errors.js';
import { fsyncDir } from '../provision/files.js';
import { memberStream } from './container.js';
import { releaseDir, releasesDir } from './layout.js';
import type { ReleaseManifest } from './manifest.js';
import type { VerifiedBundle } from './verify.js';

/**
 * Unpacks a verified bundle into releases/<version>, never anywhere else: the payload is copied
 * into a staging directory (hashed again on the way, so what is unpacked is what was verified),
 * its member list must be exactly the manifest's (no extra entry, no entry through a link), it is
 * unpacked there by the system's GNU tar, every file is checked against its sha256 and no link or
 * special file may appear that the manifest does not list — only then is the staging directory
 * renamed into place. Unpacking uses `tar` (GNU tar is on every Debian and Raspberry Pi OS) rather
 * than a JavaScript tar: it is fast on a Pi, and the checks around it do not depend on it.
 */
export async function installRelease(bundlePath: string, v: VerifiedBundle, installRoot: string): Promise<string> {
  const m = v.manifest;
  mkdirSync(releasesDir(installRoot), { recursive: true, mode: 0o755 });
  checkSpace(releasesDir(installRoot), m);
  const staging = join(releasesDir(installRoot), `.incoming-${m.version}-${randomBytes(4).toString('hex')}`);
  const tree = join(staging, 'tree');
  mkdirSync(tree, { recursive: true, mode: 0o755 });
  try {
    const payloadCopy = join(staging, 'payload.tar.gz');
    const hash = createHash('sha256');
    const src = memberStream(bundlePath, v.payload);
    src.on('data', (chunk) => hash.update(chunk as Buffer));
    await pipeline(src, createWriteStream(payloadCopy, { mode: 0o600 }));
    if (hash.digest('hex') !== m.payload.sha256)
      throw new LangbiangError('UPDATE_CORRUPT', `${bundlePath} changed while it was being installed`);
    checkListing(await tar(['-t', '-z', '-f', payloadCopy]), m);
    await tar(['-x', '-z', '-f', payloadCopy, '-C', tree, '--no-same-owner', '--no-same-permissions']);
    rmSync(payloadCopy);
    await checkTree(tree, m);
    const final = releaseDir(installRoot, m.version);
    if (!m.modules.included)
      linkTree(join(releaseDir(installRoot, v.running), 'node_modules'), join(tree, 'node_modules'));
    // on disk before anything can point at it: after a power cut, `current` must never name a
    // release whose files the page cache had not written yet (empty files that "start" and exit)
    await flushTree(tree);
    // a release of the same version left by an earlier, rolled-back attempt is replaced
    rmSync(final, { recursive: true, force: true });
    renameSync(tree, final);
    fsyncDir(releasesDir(installRoot));
    return final;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * The unpacked release and the staged payload must fit, with a margin: an SD card filled by an
 * update would take the store's writes down with it. (Reused node_modules are hard links: free.)
 */
function checkSpace(dir: string, m: ReleaseManifest): void {
  const need = Math.ceil((m.files.reduce((n, f) => n + f.size, 0) + m.payload.size) * 1.1) + 64 * 1024 * 1024;
  let free: number;
  try {
    const st = statfsSync(dir);
    free = st.bavail * st.bsize;
  } catch {
    return; // cannot tell: let the write fail if it must
  }
  if (free < need)
    throw new LangbiangError(
      'UPDATE_FAILED',
      `not enough space to install release ${m.version} in ${dir}: ${Math.round(need / 1048576)} MB needed, ${Math.round(free / 1048576)} MB free`,
    );
}

function tar(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString('utf8');
    });
    child.on('error', (e) =>
      reject(new LangbiangError('UPDATE_FAILED', `cannot run tar to unpack the release: ${e.message}`)),
    );
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else
        reject(
          new LangbiangError(
            'UPDATE_CORRUPT',
            `the release payload does not unpack (tar: ${err.trim().split('\n')[0]?.slice(0, 200) || `exit ${code}`})`,
          ),
        );
    });
  });
}

/** Directories every listed entry implies. */
function impliedDirs(m: ReleaseManifest): Set<string> {
  const dirs = new Set<string>();
  for (const e of [...m.files, ...m.links]) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return dirs;
}

/**
 * The archive's members must be exactly the manifest's entries and their directories: an entry the
 * manifest does not list (`../x`, a link slipped in) is refused before anything is unpacked.
 */
function checkListing(listing: string, m: ReleaseManifest): void {
  const expected = new Set([...m.files.map((f) => f.path), ...m.links.map((l) => l.path)]);
  const dirs = impliedDirs(m);
  for (const p of expected)
    if (dirs.has(p))
      throw new LangbiangError('UPDATE_CORRUPT', `release manifest: ${p} is both a file and a directory`);
  const seen = new Set<string>();
  for (const raw of listing.split('\n')) {
    if (raw === '') continue;
    const name = raw.replace(/^\.\//, '').replace(/\/$/, '');
    if (name === '' || name === '.') continue;
    if (dirs.has(name) && raw.endsWith('/')) continue;
    if (!expected.has(name))
      throw new LangbiangError(
        'UPDATE_CORRUPT',
        `the release payload holds "${name.slice(0, 120)}", which its manifest does not list`,
      );
    if (seen.has(name)) throw new LangbiangError('UPDATE_CORRUPT', `the release payload holds ${name} twice`);
    seen.add(name);
  }
  for (const p of expected)
    if (!seen.has(p))
      throw new LangbiangError('UPDATE_CORRUPT', `the release payload lacks ${p}, which its manifest lists`);
}

function sha256Of(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (c) => h.update(c as Buffer))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** What was unpacked is what the manifest says, byte for byte, and nothing else. */
async function checkTree(tree: string, m: ReleaseManifest): Promise<void> {
  const files = new Map(m.files.map((f) => [f.path, f]));
  const links = new Map(m.links.map((l) => [l.path, l.link]));
  const dirs = impliedDirs(m);
  const found = new Set<string>();
  const walk = async (rel: string) => {
    for (const name of readdirSync(rel ? join(tree, rel) : tree)) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(tree, path);
      const st = lstatSync(abs);
      if (st.isDirectory()) {
        if (!dirs.has(path)) throw new LangbiangError('UPDATE_CORRUPT', `unexpected directory ${path} in the release`);
        chmodSync(abs, 0o755);
        await walk(path);
      } else if (st.isSymbolicLink()) {
        if (links.get(path) !== readlinkSync(abs))
          throw new LangbiangError('UPDATE_CORRUPT', `${path} in the release is a link the manifest does not list`);
        found.add(path);
      } else if (st.isFile()) {
        const f = files.get(path);
        if (!f) throw new LangbiangError('UPDATE_CORRUPT', `unexpected file ${path} in the release`);
        if (st.size !== f.size || (await sha256Of(abs)) !== f.sha256)
          throw new LangbiangError('UPDATE_CORRUPT', `${path} does not match its checksum in the manifest`);
        chmodSync(abs, f.exec ? 0o755 : 0o644);
        found.add(path);
      } else {
        throw new LangbiangError('UPDATE_CORRUPT', `${path} in the release is not a file, directory or link`);
      }
    }
  };
  await walk('');
  for (const p of [...files.keys(), ...links.keys()])
    if (!found.has(p)) throw new LangbiangError('UPDATE_CORRUPT', `the release lacks ${p}, which its manifest lists`);
}

/**
 * The installed release's node_modules for a bundle that comes without (same lockfile): hard links,
 * so it costs no space and no copy time on the SD card; files of an installed release are never
 * written to, only replaced with the whole release.
 */
export function linkTree(from: string, to: string): void {
  const st = lstatSync(from);
  if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(from), to);
  } else if (st.isDirectory()) {
    mkdirSync(to, { mode: st.mode & 0o777 });
    for (const name of readdirSync(from)) linkTree(join(from, name), join(to, name));
  } else if (st.isFile()) {
    linkSync(from, to);
  }
}

/**
 * Writes a freshly unpacked tree to the disk: one syncfs of its filesystem (`sync -f`, coreutils)
 * rather than an fsync per file of node_modules on an SD card; where that cannot run, each file
 * and directory is fsynced.
 */
export async function flushTree(dir: string): Promise<void> {
  const synced = await new Promise<boolean>((resolve) => {
    const child = spawn('sync', ['-f', dir], { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
  if (synced) return;
  const walk = async (path: string): Promise<void> => {
    for (const entry of await readdir(path, { withFileTypes: true }))
      if (entry.isDirectory()) await walk(join(path, entry.name));
      else if (entry.isFile()) await fsyncPath(join(path, entry.name));
    await fsyncPath(path);
  };
  await walk(dir);
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
