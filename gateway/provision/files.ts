import { createHash } from 'node:crypto';
import { chmodSync, chownSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { LangbiangError } from '../core/errors.js';

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Writes a file so that a power cut leaves either the old or the new one, never half of each:
 * temp file with its final mode from the first byte, fsync, rename, fsync of the directory.
 */
export function writeFileAtomic(file: string, data: Buffer | string, mode: number, owner?: Owner): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode); // the umask may have cut the mode at creation
  if (owner) chownSync(tmp, owner.uid, owner.gid);
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncDir(dirname(file));
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
