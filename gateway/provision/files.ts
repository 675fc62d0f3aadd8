import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { LangbiangError } from '../core/errors.js';

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Writes a file so that a power cut leaves either the old or the new one, never half of each:
 * temp file with its final mode from the first byte, fsync, rename, fsync of the directory.
 *
 * Safe in a directory someone else can write to (the provisioning import runs as root in the
 * service user's data directory): the temp file is made new (O_EXCL) without following a link
 * (O_NOFOLLOW), its mode and owner are set through the open file, and the rename replaces the
 * name itself, never what a link there points at.
 */
export function writeFileAtomic(file: string, data: Buffer | string, mode: number, owner?: Owner): void {
  const tmp = `${file}.${process.pid}.tmp`;
  rmSync(tmp, { force: true }); // a leftover (or a planted link) goes; unlink never follows
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    fchmodSync(fd, mode); // the umask may have cut the mode at creation
    if (owner) fchownSync(fd, owner.uid, owner.gid);
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncDir(dirname(file));
}

/**
 * A directory made (or found) without following a link, with this mode and owner set through it:
 * a link planted where the import expects a directory would otherwise send root's writes, chmod
 * and chown anywhere on the system. Parents are made the same way.
 */
export function safeDir(dir: string, mode: number, owner?: Owner): void {
  let st: ReturnType<typeof lstatSync> | undefined;
  try {
    st = lstatSync(dir);
  } catch {
    const parent = dirname(dir);
    if (parent !== dir) {
      try {
        lstatSync(parent);
      } catch {
        safeDir(parent, 0o755);
      }
    }
    mkdirSync(dir, { mode });
  }
  if (st && !st.isDirectory())
    throw new LangbiangError(
      'BUNDLE_INVALID',
      `${dir} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; refusing to write through it`,
    );
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    fchmodSync(fd, mode);
    if (owner) fchownSync(fd, owner.uid, owner.gid);
  } finally {
    closeSync(fd);
  }
}

export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some filesystems (FAT on the boot partition) cannot fsync a directory; the rename stands
  }
}

export interface Owner {
  user: string;
  uid: number;
  gid: number;
}

/** The uid/gid of a local user, from /etc/passwd (Node has no getpwnam). */
export function lookupOwner(user: string, passwd = '/etc/passwd'): Owner {
  let text: string;
  try {
    text = readFileSync(passwd, 'utf8');
  } catch (err) {
    throw new LangbiangError('USAGE', `cannot read ${passwd} to find the user ${user}: ${(err as Error).message}`);
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === user && f.length >= 4) return { user, uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new LangbiangError('USAGE', `no local user ${user} (create it first, e.g. with deploy/install-pi.sh)`);
}
