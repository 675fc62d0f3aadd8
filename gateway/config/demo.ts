import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LangbiangError } from '../core/errors.js';

/**
 * The package root: the nearest directory above this module with the project's package.json.
 * Works from source (gateway/config/) and from dist/gateway/config/ alike.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'langbiang') return dir;
      } catch {
        // an unreadable or foreign package.json: keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir)
      throw new LangbiangError(
        'INTERNAL',
        'cannot find the langbiang package root (package.json) above the config module',
      );
    dir = parent;
  }
}

/**
 * The embedded demo config `langbiang start` runs with no --config. tsc does not copy .yaml files
 * into dist/, so it is always read from the package root's gateway/config/demo.yaml.
 */
export function demoConfigPath(): string {
  return join(packageRoot(), 'gateway', 'config', 'demo.yaml');
}
