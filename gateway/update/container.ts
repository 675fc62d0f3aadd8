import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { LangbiangError } from '../core/errors.js';

/**
 * The outer file of a release bundle: a plain POSIX tar (ustar) of exactly three regular files, in
 * this order — `manifest.json`, `manifest.sig`, `payload.tar.gz` — so `tar -tvf` shows what it is,
 * and the gateway can read and check the signed manifest before it reads a byte of the payload.
 * Only regular files with these names are accepted; anything else in the container is refused.
 */
export const MEMBERS = ['manifest.json', 'manifest.sig', 'payload.tar.gz'] as const;
export type MemberName = (typeof MEMBERS)[number];

const BLOCK = 512;
/** a manifest of a full bundle lists every file of node_modules: a few MB at most */
const MAX_MANIFEST_BYTES = 32 * 1024 * 1024;

export interface Member {
  name: MemberName;
  /** byte offset of the member's data in the file */
  offset: number;
  size: number;
}

function corrupt(file: string, why: string): LangbiangError {
  return new LangbiangError('UPDATE_CORRUPT', `${file} is not a usable release bundle: ${why}`);
}

function octal(buf: Buffer, start: number, len: number): number {
  const text = buf
    .subarray(start, start + len)
    .toString('latin1')
    .replace(/[\0 ]+$/g, '')
    .trim();
  if (!/^[0-7]+$/.test(text)) return Number.NaN;
  return Number.parseInt(text, 8);
}

function checksumOf(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return sum;
}

/** The three members' places in a bundle; throws UPDATE_CORRUPT for anything else, or a truncated file. */
export function readMembers(file: string): { members: Map<MemberName, Member>; fileSize: number } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new LangbiangError('UPDATE_CORRUPT', `cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const fileSize = fstatSync(fd).size;
    const members = new Map<MemberName, Member>();
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    for (const expected of MEMBERS) {
      if (pos + BLOCK > fileSize) throw corrupt(file, `truncated (${fileSize} bytes; ${expected} missing)`);
      readSync(fd, header, 0, BLOCK, pos);
      if (header.every((b) => b === 0)) throw corrupt(file, `${expected} missing`);
      if (octal(header, 148, 8) !== checksumOf(header)) throw corrupt(file, `bad tar header at byte ${pos}`);
      const name = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
      const prefix = header.subarray(345, 500).toString('utf8').replace(/\0.*$/s, '');
      const type = String.fromCharCode(header[156]!);
      if (prefix !== '' || name !== expected)
        throw corrupt(file, `expected ${expected}, found "${(prefix ? `${prefix}/` : '') + name.slice(0, 80)}"`);
      if (type !== '0' && type !== '\0') throw corrupt(file, `${name} is not a regular file`);
      const size = octal(header, 124, 12);
      if (!Number.isSafeInteger(size)) throw corrupt(file, `bad size of ${name}`);
      if (name !== 'payload.tar.gz' && size > MAX_MANIFEST_BYTES) throw corrupt(file, `${name} is too large`);
      const offset = pos + BLOCK;
      if (offset + size > fileSize)
        throw corrupt(file, `truncated (${name} needs ${size} bytes, ${Math.max(0, fileSize - offset)} present)`);
      members.set(expected, { name: expected, offset, size });
      pos = offset + Math.ceil(size / BLOCK) * BLOCK;
    }
    return { members, fileSize };
  } finally {
    closeSync(fd);
  }
}

export function readMember(file: string, m: Member): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(m.size);
    let done = 0;
    while (done < m.size) {
      const n = readSync(fd, buf, done, m.size - done, m.offset + done);
      if (n === 0) throw corrupt(file, `truncated in ${m.name}`);
      done += n;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** A read stream of one member's bytes. */
export function memberStream(file: string, m: Member): NodeJS.ReadableStream {
  if (m.size === 0) return createReadStream(file, { start: 1, end: 0 });
  return createReadStream(file, { start: m.offset, end: m.offset + m.size - 1 });
}

/** sha256 (hex) of one member, streamed: a bundle can be larger than a Pi's free memory. */
export async function hashMember(file: string, m: Member): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of memberStream(file, m)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function header(name: string, size: number, mtimeS: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write(`${mtimeS.toString(8).padStart(11, '0')}\0`, 136, 'latin1');
  h.write('0', 156, 'latin1');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.write(`${checksumOf(h).toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** Writes the container: manifest, signature, then the payload file copied in chunks. */
export function writeContainer(out: string, manifest: Buffer, sig: Buffer, payloadFile: string, mtimeS: number): void {
  const fd = openSync(out, 'wx', 0o644);
  try {
    const pad = (n: number) => {
      const r = n % BLOCK;
      if (r) writeSync(fd, Buffer.alloc(BLOCK - r));
    };
    for (const [name, data] of [
      ['manifest.json', manifest],
      ['manifest.sig', sig],
    ] as const) {
      writeSync(fd, header(name, data.length, mtimeS));
      writeSync(fd, data);
      pad(data.length);
    }
    const src = openSync(payloadFile, 'r');
    try {
      const size = fstatSync(src).size;
      writeSync(fd, header('payload.tar.gz', size, mtimeS));
      const chunk = Buffer.alloc(1 << 20);
      let pos = 0;
      for (;;) {
        const n = readSync(src, chunk, 0, chunk.length, pos);
        if (n === 0) break;
        writeSync(fd, chunk, 0, n);
        pos += n;
      }
      pad(size);
    } finally {
      closeSync(src);
    }
    writeSync(fd, Buffer.alloc(BLOCK * 2)); // end of archive
  } finally {
    closeSync(fd);
  }
}
