import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LangbiangError } from './core/errors.js';

/**
 * Random secrets the gateway makes for itself (e.g. the key Node-RED encrypts flow credentials
 * with), one file each under `<dataDir>/secrets/`, mode 0600, made once on first use and kept:
 * losing one makes what it encrypted unreadable, so it is never regenerated over an existing file.
 */
export function loadOrCreateSecret(dataDir: string, name: string): string {
  if (!/^[a-z0-9-]+$/.test(name)) throw new LangbiangError('INTERNAL', `bad secret name ${name}`);
  const dir = join(dataDir, 'secrets');
  const file = join(dir, name);
  try {
    const text = readFileSync(file, 'utf8').trim();
    if (text) return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new LangbiangError('STORE_FAILED', `cannot read the secret ${file}: ${(err as Error).message}`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const secret = randomBytes(32).toString('base64url');
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${secret}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return secret;
}
