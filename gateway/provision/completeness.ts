import { existsSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import type { Document } from 'yaml';

/** Each file a config may name, and the `langbiang provision` flag that puts it into the bundle. */
const FILE_KEYS: { path: string[]; flag: string }[] = [
  { path: ['sync', 'tls', 'ca'], flag: '--ca FILE' },
  { path: ['sync', 'tls', 'cert'], flag: '--cert FILE --key FILE (or --ca FILE --ca-key FILE to have one made)' },
  { path: ['sync', 'tls', 'key'], flag: '--cert FILE --key FILE (or --ca FILE --ca-key FILE to have one made)' },
  { path: ['sync', 'passwordFile'], flag: '--password-file FILE' },
];

/**
 * The files the bundle's config names that the bundle does not bring: a template written on the
 * laptop (`tls.ca: /home/lan/city/ca.pem`) would reach the gateway pointing at a file that is not
 * there, and the gateway would refuse to start on its first boot, far from the technician. One
 * sentence per key, with the flag that puts the file into the bundle.
 */
export function filesNotInBundle(doc: Document, dataDir: string, secretsDir: string): string[] {
  const inBundle = posix.join(dataDir, 'secrets');
  const missing: string[] = [];
  for (const { path, flag } of FILE_KEYS) {
    const value = doc.getIn(path);
    if (value === undefined || value === null) continue;
    const file = String(value);
    const bundled = posix.dirname(file) === inBundle && existsSync(join(secretsDir, basename(file)));
    if (bundled) continue;
    missing.push(
      `${path.join('.')}: ${file} is not in the bundle, so the gateway would not find it on first boot; pass ${flag}`,
    );
  }
  return missing;
}
