import { existsSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { type Document, isPair, isScalar, isSeq, visit } from 'yaml';

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
  // `key: !file /home/lan/secret.txt` is read when the gateway loads its config: the same trap
  visit(doc, {
    Scalar(_key, node, ancestors) {
      if (node.tag !== '!file') return;
      missing.push(
        `${keyPath(ancestors, node)}: !file ${String(node.value)} is read from a file the bundle does not carry; write the value into the template (or, for sync.passwordFile, pass --password-file FILE)`,
      );
    },
  });
  return missing;
}

/** `sync.tls.ca`, `buses.0.port`: where a node sits, for the message. */
function keyPath(ancestors: readonly unknown[], node: unknown): string {
  const parts: string[] = [];
  ancestors.forEach((a, i) => {
    if (isPair(a)) parts.push(String(isScalar(a.key) ? a.key.value : a.key));
    else if (isSeq(a)) parts.push(String(a.items.indexOf((ancestors[i + 1] ?? node) as never)));
  });
  return parts.join('.');
}
