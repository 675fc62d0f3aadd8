import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { describeError, LangbiangError } from '../core/errors.js';
import { KEY_NAME, parsePrivateKey } from '../core/signed.js';
import { READ_VERSION, SCHEMA_VERSION } from '../store/index.js';
import { writeContainer } from './container.js';
import { nativeModuleProblem, prebuildDirFor } from './elf.js';
import { packageRoot } from './layout.js';
import {
  ARCHES,
  linkStaysInside,
  type ManifestFile,
  type ManifestLink,
  type ReleaseArch,
  type ReleaseManifest,
  signManifest,
} from './manifest.js';
import { hostArch } from './verify.js';
import { isVersion } from './version.js';

/**
 * `langbiang release pack`: one signed bundle of this checkout's built code (dist/ and the files
 * package.json ships) and its production node_modules, for one architecture. The native modules
 * must be the arch's own (checked in each `.node` file's ELF header), so an ARM bundle is packed on
 * an ARM machine (docs/operations.md, "Building release bundles").
 */
export interface PackOptions {
  /** the checkout to pack (default: the one this code runs from) */
  root?: string;
  out?: string;
  /** the release private key (PEM, PKCS#8), read from this path */
  keyFile: string;
  /** default: the key file's name without .key */
  keyName?: string;
  version?: string;
  arch?: string;
  /** leave node_modules out: the gateway reuses its installed release's (same package-lock.json) */
  reuseModules?: boolean;
  now?: number;
}

export interface PackResult {
  file: string;
  manifest: ReleaseManifest;
  bytes: number;
}

/** Never shipped: built benchmarks, source maps of the benchmarks. */
const EXCLUDE_TOP = new Set(['dist/bench']);

export function packRelease(o: PackOptions): PackResult {
  const root = resolve(o.root ?? packageRoot());
  const pkg = readJson(join(root, 'package.json')) as {
    version?: string;
    files?: string[];
    engines?: { node?: string };
  };
  const version = o.version ?? pkg.version ?? '';
  if (!isVersion(version))
    throw new LangbiangError('USAGE', `--version "${version}" is not a version (major.minor.patch)`);
  const arch = (o.arch ?? hostArch()) as ReleaseArch;
  if (!ARCHES.includes(arch))
    throw new LangbiangError('USAGE', `--arch must be one of ${ARCHES.join(', ')} (got "${arch}")`);
  if (!existsSync(join(root, 'dist', 'gateway', 'cli', 'main.js')))
    throw new LangbiangError('USAGE', `${root}/dist is not built; run npm run build first`);
  const lockFile = join(root, 'package-lock.json');
  if (!existsSync(lockFile))
    throw new LangbiangError('USAGE', `${lockFile} is missing; a release pins its dependencies`);
  let privateKey: ReturnType<typeof parsePrivateKey>;
  try {
    privateKey = parsePrivateKey(readFileSync(o.keyFile, 'utf8'));
  } catch (err) {
    throw new LangbiangError('USAGE', `--key ${o.keyFile}: not a usable Ed25519 private key (${describeError(err)})`);
  }
  const keyName = o.keyName ?? basename(o.keyFile).replace(/\.key$/, '');
  if (!KEY_NAME.test(keyName))
    throw new LangbiangError('USAGE', `key name "${keyName}" must be letters, digits, . _ - (use --key-name)`);

  // what the package ships (package.json "files"), then package.json and the lockfile
  const paths = new Set<string>();
  for (const entry of pkg.files ?? ['bin', 'dist']) collect(root, entry, paths);
  paths.add('package.json');
  paths.add('package-lock.json');
  if (!o.reuseModules) for (const dir of productionPackages(root)) collect(root, dir, paths, arch);

  const staging = mkdtempSync(join(tmpdir(), 'langbiang-pack-'));
  try {
    const tree = join(staging, 'tree');
    const files: ManifestFile[] = [];
    const links: ManifestLink[] = [];
    const problems: string[] = [];
    for (const p of [...paths].sort()) {
      const src = join(root, p);
      const dst = join(tree, p);
      mkdirSync(dirname(dst), { recursive: true });
      const st = lstatSync(src);
      if (st.isSymbolicLink()) {
        const target = readlinkSync(src);
        if (!linkStaysInside(p, target) || !paths.has(join(dirname(p), target).split(sep).join('/'))) continue;
        symlinkSync(target, dst);
        links.push({ path: p, link: target });
        continue;
      }
      if (p === 'package.json') {
        // the release's version is its package.json's: what the running gateway reports
        writeFileSync(dst, `${JSON.stringify({ ...pkg, version }, null, 2)}\n`);
      } else {
        try {
          linkSync(src, dst);
        } catch {
          copyFileSync(src, dst);
        }
      }
      if (p.endsWith('.node')) {
        const problem = nativeModuleProblem(src, arch, p);
        if (problem) problems.push(problem);
      }
      const data = readFileSync(dst);
      const exec = (st.mode & 0o111) !== 0;
      files.push({
        path: p,
        size: data.length,
        sha256: createHash('sha256').update(data).digest('hex'),
        ...(exec ? { exec } : {}),
      });
    }
    if (problems.length > 0)
      throw new LangbiangError(
        'UPDATE_WRONG_ARCH',
        `cannot pack for ${arch}: ${problems.length} native module${problems.length === 1 ? ' is' : 's are'} built for another machine (pack on a ${arch} machine): ${problems.slice(0, 3).join('; ')}`,
      );
    const payload = join(staging, 'payload.tar.gz');
    const list = join(staging, 'files.list');
    writeFileSync(list, [...files.map((f) => f.path), ...links.map((l) => l.path)].join('\0'));
    const mtime = Math.floor((o.now ?? Date.now()) / 1000);
    const tarRun = spawnSync(
      'tar',
      [
        '-c',
        '-z',
        '-f',
        payload,
        '-C',
        tree,
        '--owner=0',
        '--group=0',
        '--numeric-owner',
        `--mtime=@${mtime}`,
        '--no-recursion',
        '--null',
        '--verbatim-files-from',
        '-T',
        list,
      ],
      { encoding: 'utf8' },
    );
    if (tarRun.status !== 0)
      throw new LangbiangError(
        'UPDATE_FAILED',
        `tar could not pack the release: ${(tarRun.stderr ?? '').trim().slice(0, 300)}`,
      );
    const payloadBytes = readFileSync(payload);
    const manifest: ReleaseManifest = {
      format: 1,
      product: 'langbiang',
      version,
      platform: 'linux',
      arch,
      node: { abi: process.versions.modules, min: minNode(pkg.engines?.node) },
      store: { schema: SCHEMA_VERSION, readVersion: READ_VERSION },
      createdAt: new Date(o.now ?? Date.now()).toISOString(),
      key: keyName,
      payload: { size: payloadBytes.length, sha256: createHash('sha256').update(payloadBytes).digest('hex') },
      modules: {
        included: !o.reuseModules,
        lockSha256: createHash('sha256').update(readFileSync(lockFile)).digest('hex'),
      },
      files,
      links,
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest), 'utf8');
    const sig = signManifest(manifestBytes, privateKey);
    const outDir = resolve(o.out ?? '.');
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `langbiang-${version}-linux-${arch}.lbr`);
    if (existsSync(file)) throw new LangbiangError('USAGE', `${file} exists; a bundle is never overwritten`);
    writeContainer(file, manifestBytes, sig, payload, mtime);
    return { file, manifest, bytes: statSync(file).size };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new LangbiangError('USAGE', `cannot read ${file}: ${describeError(err)}`);
  }
}

function minNode(range: string | undefined): string {
  const m = /(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(range ?? '');
  return m ? `${m[1]}.${m[2] ?? 0}.${m[3] ?? 0}` : '20.0.0';
}

/**
 * Adds a path of the checkout (a file, or a directory's files and links, recursively). Inside a
 * package of node_modules, its own node_modules is left to that package's own entry (only
 * production packages are listed), and prebuilds for other machines are left out.
 */
function collect(root: string, rel: string, into: Set<string>, arch?: ReleaseArch): void {
  const abs = join(root, rel);
  if (EXCLUDE_TOP.has(rel)) return;
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(abs);
  } catch {
    return;
  }
  if (st.isDirectory()) {
    for (const name of readdirSync(abs)) {
      const child = rel ? `${rel}/${name}` : name;
      if (arch && rel.startsWith('node_modules/') && name === 'node_modules') continue;
      if (arch && /(^|\/)prebuilds$/.test(rel) && name !== prebuildDirFor(arch)) continue;
      collect(root, child, into, arch);
    }
  } else if (st.isFile() || st.isSymbolicLink()) {
    into.add(rel);
  }
}

/** The checkout's production packages (npm's own view: `npm ls --omit=dev`), relative to it. */
function productionPackages(root: string): string[] {
  let out: string;
  try {
    out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch (err) {
    // npm ls exits non-zero for an extraneous or missing optional package but still lists the rest
    out = (err as { stdout?: string }).stdout ?? '';
    if (!out)
      throw new LangbiangError('UPDATE_FAILED', `npm ls could not list the production packages: ${describeError(err)}`);
  }
  return out
    .split('\n')
    .map((l) => relative(root, l.trim()).split(sep).join('/'))
    .filter((p) => p.startsWith('node_modules/'));
}
