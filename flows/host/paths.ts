import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root, found by walking up to our package.json: this module runs both compiled
 * (dist/flows/host/) and from source under vitest, and the runner is always the compiled one.
 */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'langbiang') return dir;
      } catch {
        // not ours; keep walking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the langbiang package root');
    dir = up;
  }
}

const ROOT = packageRoot();

export const FLOWS_PATHS = {
  /** the compiled runner (npm run build makes it) */
  runner: join(ROOT, 'dist', 'flows', 'host', 'runner.js'),
  /** the langbiang node package (plain JS, shipped as is) */
  nodesDir: join(ROOT, 'flows', 'nodes'),
  defaultFlows: join(ROOT, 'flows', 'default-flows.json'),
};
