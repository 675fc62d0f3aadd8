import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { safeDir, writeFileAtomic } from '../../gateway/provision/files.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-files-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('writes that follow no link (the import runs as root in a directory the service user owns)', () => {
  it('a link planted at the temporary name is replaced, not written through', () => {
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'untouched\n', { mode: 0o644 });
    const file = join(dir, 'client.key');
    symlinkSync(victim, `${file}.${process.pid}.tmp`);
    writeFileAtomic(file, 'KEY\n', 0o600);
    expect(readFileSync(victim, 'utf8')).toBe('untouched\n');
    expect(statSync(victim).mode & 0o777).toBe(0o644);
    expect(readFileSync(file, 'utf8')).toBe('KEY\n');
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('a link at the final name is replaced by the file, the target left alone', () => {
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'untouched\n');
    const file = join(dir, 'mqtt-password');
    symlinkSync(victim, file);
    writeFileAtomic(file, 'pw\n', 0o600);
    expect(readFileSync(victim, 'utf8')).toBe('untouched\n');
    expect(statSync(file, { throwIfNoEntry: true }).isFile()).toBe(true);
  });

  it('safeDir refuses a link where a directory is expected, and makes missing ones with their mode', () => {
    const target = join(dir, 'target');
    mkdirSync(target, { mode: 0o755 });
    symlinkSync(target, join(dir, 'secrets'));
    expect(() => safeDir(join(dir, 'secrets'), 0o700)).toThrow(/is a symbolic link; refusing to write through it/);
    expect(statSync(target).mode & 0o777).toBe(0o755);
    safeDir(join(dir, 'a', 'b'), 0o700);
    expect(statSync(join(dir, 'a', 'b')).mode & 0o777).toBe(0o700);
  });
});
