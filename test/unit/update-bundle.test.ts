import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../gateway/core/log.js';
import { READ_VERSION, SCHEMA_VERSION, Store } from '../../gateway/store/index.js';
import { missingHealth } from '../../gateway/update/confirm.js';
import { readMembers, writeContainer } from '../../gateway/update/container.js';
import { elfInfo } from '../../gateway/update/elf.js';
import { applyUpdate, readUpdateStatus, verifyBundle } from '../../gateway/update/index.js';
import type { ReleaseManifest } from '../../gateway/update/manifest.js';
import { packRelease } from '../../gateway/update/pack.js';
import { compareVersions } from '../../gateway/update/version.js';

const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));
/** a real x86-64 native module of this checkout (what the ELF check reads) */
const X64_NODE = join(CHECKOUT, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node');

let dir: string;
let key: KeyObject;
let pub: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-upd-unit-'));
  const pair = generateKeyPairSync('ed25519');
  key = pair.privateKey;
  pub = pair.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  writeFileSync(join(dir, 'rel.key'), key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A tiny project to pack: bin, dist, a lockfile, one production package with a native module. */
function project(name = 'proj'): string {
  const root = join(dir, name);
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'dist/gateway/cli'), { recursive: true });
  writeFileSync(
    join(root, 'package.json'),
    JSON.stringify({
      name: 'langbiang',
      version: '0.1.0',
      engines: { node: '>=20' },
      files: ['bin', 'dist'],
      dependencies: { tiny: '1.0.0' },
    }),
  );
  writeFileSync(join(root, 'package-lock.json'), '{"lockfileVersion":3}\n');
  writeFileSync(join(root, 'bin/langbiang.js'), '#!/usr/bin/env node\n', { mode: 0o755 });
  writeFileSync(join(root, 'dist/gateway/cli/main.js'), 'export const main = () => {};\n');
  const tiny = join(root, 'node_modules/tiny');
  mkdirSync(join(tiny, 'build/Release'), { recursive: true });
  mkdirSync(join(tiny, 'prebuilds/linux-arm64'), { recursive: true });
  mkdirSync(join(tiny, 'bin'), { recursive: true });
  writeFileSync(join(tiny, 'package.json'), '{"name":"tiny","version":"1.0.0"}');
  writeFileSync(join(tiny, 'bin/tiny.js'), 'x', { mode: 0o755 });
  copyFileSync(X64_NODE, join(tiny, 'build/Release/tiny.node'));
  // a prebuild for another machine: left out of an x64 bundle
  writeFileSync(join(tiny, 'prebuilds/linux-arm64/tiny.node'), 'not for this machine');
  mkdirSync(join(root, 'node_modules/.bin'));
  symlinkSync('../tiny/bin/tiny.js', join(root, 'node_modules/.bin/tiny'));
  return root;
}

/** The gateway side: an install root with release `version` current, a data dir with the key pinned. */
function gateway(version = '1.0.0', from = project('installed')) {
  const installRoot = join(dir, 'opt');
  const dataDir = join(dir, 'data');
  mkdirSync(join(dataDir, 'trust/release'), { recursive: true });
  writeFileSync(join(dataDir, 'trust/release/rel.pem'), pub);
  const rel = join(installRoot, 'releases', version);
  mkdirSync(rel, { recursive: true });
  for (const f of ['bin', 'dist', 'node_modules', 'package-lock.json', 'package.json'])
    spawnSync('cp', ['-a', join(from, f), join(rel, f)]);
  symlinkSync(`releases/${version}`, join(installRoot, 'current'));
  return { installRoot, dataDir, log: silentLogger, running: version };
}

function pack(version: string, o: { root?: string; reuse?: boolean; out?: string; arch?: string } = {}): string {
  return packRelease({
    root: o.root ?? project(`p-${version}`),
    keyFile: join(dir, 'rel.key'),
    version,
    reuseModules: o.reuse ?? true,
    out: o.out ?? join(dir, 'bundles'),
    arch: o.arch,
  }).file;
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Re-signs a bundle after changing its manifest and/or payload: what only a key holder can do. */
function forge(file: string, edit: (m: ReleaseManifest) => void, payload?: Buffer, signer: KeyObject = key): string {
  const { members } = readMembers(file);
  const raw = readFileSync(file);
  const m = members.get('manifest.json')!;
  const manifest = JSON.parse(raw.subarray(m.offset, m.offset + m.size).toString()) as ReleaseManifest;
  const p = members.get('payload.tar.gz')!;
  const body = payload ?? raw.subarray(p.offset, p.offset + p.size);
  manifest.payload = { size: body.length, sha256: sha(body) };
  edit(manifest);
  const bytes = Buffer.from(JSON.stringify(manifest));
  const out = join(dir, `forged-${Math.random().toString(36).slice(2)}.lbr`);
  const payloadFile = `${out}.payload`;
  writeFileSync(payloadFile, body);
  writeContainer(out, bytes, sign(null, bytes, signer), payloadFile, 0);
  return out;
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return { code: (err as { code: string }).code, message: (err as Error).message };
  }
  throw new Error('expected a refusal');
}

describe('versions (semver precedence)', () => {
  it('orders releases, pre-releases and numbers as semver does', () => {
    const sorted = [
      '0.9.0',
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '1.2.0',
      '1.10.0',
      '2.0.0',
    ];
    for (let i = 0; i + 1 < sorted.length; i++) {
      expect(compareVersions(sorted[i]!, sorted[i + 1]!), `${sorted[i]} < ${sorted[i + 1]}`).toBeLessThan(0);
      expect(compareVersions(sorted[i + 1]!, sorted[i]!)).toBeGreaterThan(0);
    }
    expect(compareVersions('1.2.3+build.7', '1.2.3')).toBe(0);
    expect(() => compareVersions('1.2', '1.2.0')).toThrow(/not a version/);
  });
});

describe('release bundles: pack and verify', () => {
  it('a good bundle verifies; its container is a plain tar of manifest, signature, payload', async () => {
    const gw = gateway();
    const file = pack('1.1.0');
    expect(spawnSync('tar', ['-tf', file], { encoding: 'utf8' }).stdout.trim().split('\n')).toEqual([
      'manifest.json',
      'manifest.sig',
      'payload.tar.gz',
    ]);
    expect(await verifyBundle(file, gw)).toMatchObject({
      version: '1.1.0',
      arch: 'x64',
      keyName: 'rel',
      reusesModules: true,
    });
  });

  it('refuses a tampered manifest byte, a tampered payload byte, another key, no key, a truncated file', async () => {
    const gw = gateway();
    const file = pack('1.1.0');
    const { members } = readMembers(file);
    const flip = (offset: number) => {
      const out = join(dir, `t-${offset}.lbr`);
      const b = readFileSync(file);
      b[offset] = b[offset]! ^ 0x01;
      writeFileSync(out, b);
      return out;
    };
    const m = members.get('manifest.json')!;
    // the version's digit in the manifest: still JSON, no longer what was signed
    const at =
      m.offset +
      readFileSync(file)
        .subarray(m.offset, m.offset + m.size)
        .indexOf('"1.1.0"') +
      1;
    expect(await refusal(verifyBundle(flip(at), gw))).toMatchObject({ code: 'UPDATE_BAD_SIGNATURE' });
    const p = members.get('payload.tar.gz')!;
    expect(await refusal(verifyBundle(flip(p.offset + Math.floor(p.size / 2)), gw))).toMatchObject({
      code: 'UPDATE_CORRUPT',
      message: expect.stringMatching(/checksum does not match/),
    });
    // signed by another key under the pinned key's name
    const other = generateKeyPairSync('ed25519').privateKey;
    expect(
      await refusal(
        verifyBundle(
          forge(file, () => {}, undefined, other),
          gw,
        ),
      ),
    ).toMatchObject({
      code: 'UPDATE_BAD_SIGNATURE',
    });
    // signed by the pinned key, but naming another one
    expect(
      await refusal(
        verifyBundle(
          forge(file, (mf) => Object.assign(mf, { key: 'stranger' })),
          gw,
        ),
      ),
    ).toMatchObject({
      code: 'UPDATE_BAD_SIGNATURE',
      message: expect.stringMatching(/names the key "stranger" but is signed by the pinned key "rel"/),
    });
    // nothing of a manifest no pinned key signed is parsed: JSON.parse never sees its bytes
    const unsigned = forge(
      file,
      (mf) => Object.assign(mf, { key: 'rel', createdAt: '2030-01-01T00:00:00Z' }),
      undefined,
      other,
    );
    const parsed: string[] = [];
    const parse = JSON.parse;
    const watch = vi.spyOn(JSON, 'parse').mockImplementation((text: string, reviver?: Parameters<typeof parse>[1]) => {
      parsed.push(String(text));
      return parse(text, reviver);
    });
    try {
      expect(await refusal(verifyBundle(unsigned, gw))).toMatchObject({
        code: 'UPDATE_BAD_SIGNATURE',
        message: expect.stringMatching(/signature does not match/),
      });
    } finally {
      watch.mockRestore();
    }
    expect(parsed.filter((t) => t.includes('2030-01-01T00:00:00Z'))).toEqual([]);
    const cut = join(dir, 'cut.lbr');
    copyFileSync(file, cut);
    truncateSync(cut, statSync(cut).size - 3000);
    expect(await refusal(verifyBundle(cut, gw))).toMatchObject({
      code: 'UPDATE_CORRUPT',
      message: expect.stringMatching(/truncated/),
    });
    rmSync(join(gw.dataDir, 'trust/release/rel.pem'));
    expect(await refusal(verifyBundle(file, gw))).toMatchObject({ code: 'UPDATE_NO_KEY' });
  });

  it('refuses the wrong arch, a downgrade and the running version; restores only the confirmed previous release', async () => {
    const gw = gateway('2.0.0');
    expect(await refusal(verifyBundle(pack('2.1.0'), { ...gw, arch: 'arm64' }))).toMatchObject({
      code: 'UPDATE_WRONG_ARCH',
      message: 'release 2.1.0 is built for x64, this gateway is arm64',
    });
    const older = pack('1.9.0');
    expect(await refusal(verifyBundle(older, gw))).toMatchObject({
      code: 'UPDATE_DOWNGRADE',
      message: expect.stringMatching(/older than the running 2\.0\.0; a downgrade is refused/),
    });
    expect(await refusal(verifyBundle(pack('2.0.0'), gw))).toMatchObject({ code: 'UPDATE_DOWNGRADE' });
    expect(await refusal(verifyBundle(older, { ...gw, allowDowngrade: true }))).toMatchObject({
      code: 'UPDATE_DOWNGRADE',
      message: expect.stringMatching(/not the confirmed previous release \(none\)/),
    });
    mkdirSync(join(gw.dataDir, 'update'));
    writeFileSync(
      join(gw.dataDir, 'update/state.json'),
      JSON.stringify({ v: 1, confirmed: '2.0.0', previous: '1.9.0' }),
    );
    expect(await verifyBundle(older, { ...gw, allowDowngrade: true })).toMatchObject({ version: '1.9.0' });
  });

  it('refuses a release that cannot read the store, or whose store the running release could not read', async () => {
    const gw = gateway();
    const db = new Database(join(gw.dataDir, 'langbiang.db'));
    db.exec(
      "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO meta VALUES ('read_version', ?)".replace(
        '?',
        `'${SCHEMA_VERSION + 1}'`,
      ),
    );
    db.pragma(`user_version = ${SCHEMA_VERSION + 2}`);
    db.close();
    expect(await refusal(verifyBundle(pack('1.1.0'), gw))).toMatchObject({
      code: 'UPDATE_INCOMPATIBLE',
      message: expect.stringMatching(/cannot read this gateway's store/),
    });
    rmSync(join(gw.dataDir, 'langbiang.db'));
    const breaking = forge(pack('1.2.0'), (m) => {
      m.store = { schema: SCHEMA_VERSION + 1, readVersion: SCHEMA_VERSION + 1 };
    });
    expect(await refusal(verifyBundle(breaking, gw))).toMatchObject({
      code: 'UPDATE_INCOMPATIBLE',
      message: expect.stringMatching(/could not be rolled back/),
    });
    // a backward-readable migration (read version unchanged) is fine
    const additive = forge(pack('1.3.0'), (m) => {
      m.store = { schema: SCHEMA_VERSION + 1, readVersion: READ_VERSION };
    });
    expect(await verifyBundle(additive, gw)).toMatchObject({ version: '1.3.0' });
  });

  it('refuses manifest paths out of the tree and payload entries the manifest does not list, writing nothing', async () => {
    const gw = gateway();
    const file = pack('1.1.0');
    const traversal = forge(file, (m) => m.files.push({ path: '../evil', size: 1, sha256: '0'.repeat(64) }));
    expect(await refusal(verifyBundle(traversal, gw))).toMatchObject({
      code: 'UPDATE_CORRUPT',
      message: expect.stringMatching(/not a plain relative path/),
    });
    const linkOut = forge(file, (m) => m.links.push({ path: 'bin/x', link: '../../../etc/passwd' }));
    expect(await refusal(verifyBundle(linkOut, gw))).toMatchObject({
      message: expect.stringMatching(/links out of the release/),
    });
    // a payload with an extra member `../evil` (python's tarfile writes what GNU tar would not)
    const payload = spawnSync('tar', ['-xOf', file, 'payload.tar.gz']).stdout as Buffer;
    writeFileSync(join(dir, 'p.tgz'), payload);
    const py = [
      'import tarfile, io, sys',
      "src = tarfile.open(sys.argv[1], 'r:gz')",
      "out = tarfile.open(sys.argv[2], 'w:gz')",
      'for m in src.getmembers(): out.addfile(m, src.extractfile(m) if m.isfile() else None)',
      "data = b'pwned'",
      "ti = tarfile.TarInfo('../evil'); ti.size = len(data); out.addfile(ti, io.BytesIO(data))",
      "li = tarfile.TarInfo('bin/out'); li.type = tarfile.SYMTYPE; li.linkname = '/etc'; out.addfile(li)",
      'out.close()',
    ].join('\n');
    expect(spawnSync('python3', ['-c', py, join(dir, 'p.tgz'), join(dir, 'evil.tgz')]).status).toBe(0);
    const smuggled = forge(file, () => {}, readFileSync(join(dir, 'evil.tgz')));
    expect(await verifyBundle(smuggled, gw)).toMatchObject({ version: '1.1.0' }); // signed: the checks below must stop it
    expect(await refusal(applyUpdate(smuggled, gw))).toMatchObject({
      code: 'UPDATE_CORRUPT',
      message: expect.stringMatching(/holds "\.\.\/evil", which its manifest does not list/),
    });
    expect(existsSync(join(gw.installRoot, 'releases', 'evil'))).toBe(false);
    expect(existsSync(join(gw.installRoot, 'evil'))).toBe(false);
    expect(existsSync(join(gw.installRoot, 'releases', '1.1.0'))).toBe(false);
    expect(readlinkSync(join(gw.installRoot, 'current'))).toBe('releases/1.0.0');
    // and the refusal is an event waiting for the gateway, and the last outcome
    const events = readFileSync(join(gw.dataDir, 'update/events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.at(-1)).toMatchObject({
      outcome: 'refused',
      version: '1.1.0',
      reason: 'UPDATE_CORRUPT',
      running: '1.0.0',
    });
    expect(readUpdateStatus(gw).last).toMatchObject({ outcome: 'refused', version: '1.1.0', reason: 'UPDATE_CORRUPT' });
  });
});

describe('native modules and the arch label', () => {
  it('reads the ELF machine of a .node file and refuses to label x86-64 modules arm64', () => {
    expect(elfInfo(X64_NODE)).toMatchObject({ bits: 64, machine: 62, name: 'x86-64' });
    expect(elfInfo(join(CHECKOUT, 'package.json'))).toBeNull();
    let err: { code?: string; message?: string } = {};
    try {
      pack('1.1.0', { reuse: false, arch: 'arm64' });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('UPDATE_WRONG_ARCH');
    expect(err.message).toMatch(
      /node_modules\/tiny\/build\/Release\/tiny\.node is built for x86-64 \(64-bit\), not AArch64 \(arm64\)/,
    );
    // the arm64 prebuild is the arch's own, so it is packed and checked too (this fake one is no ELF file)
    expect(err.message).toMatch(/prebuilds\/linux-arm64\/tiny\.node is not a Linux \(ELF\) native module/);
  });
});

describe('install side by side', () => {
  it('installs a bundle reusing the installed node_modules (hard links) and switches current', async () => {
    const gw = gateway();
    const r = await applyUpdate(pack('1.1.0'), { ...gw, baseline: { devices: ['meter-1'], sync: true } });
    expect(r).toEqual({ version: '1.1.0', previous: '1.0.0' });
    expect(readlinkSync(join(gw.installRoot, 'current'))).toBe('releases/1.1.0');
    const a = statSync(join(gw.installRoot, 'releases/1.0.0/node_modules/tiny/package.json'));
    const b = statSync(join(gw.installRoot, 'releases/1.1.0/node_modules/tiny/package.json'));
    expect(b.ino).toBe(a.ino);
    expect(readlinkSync(join(gw.installRoot, 'releases/1.1.0/node_modules/.bin/tiny'))).toBe('../tiny/bin/tiny.js');
    expect(JSON.parse(readFileSync(join(gw.installRoot, 'releases/1.1.0/package.json'), 'utf8')).version).toBe('1.1.0');
    expect(statSync(join(gw.installRoot, 'releases/1.1.0/bin/langbiang.js')).mode & 0o111).not.toBe(0);
    expect(readUpdateStatus(gw)).toMatchObject({
      running: '1.1.0',
      previous: '1.0.0',
      pending: { version: '1.1.0', attempts: 0 },
    });
    const state = JSON.parse(readFileSync(join(gw.dataDir, 'update/state.json'), 'utf8'));
    expect(state.pending).toMatchObject({
      previous: '1.0.0',
      maxAttempts: 3,
      baseline: { devices: ['meter-1'], sync: true },
    });
    // one at a time: a second install waits for the first to be confirmed or rolled back
    expect(await refusal(applyUpdate(pack('1.2.0'), { ...gw, running: '1.1.0' }))).toMatchObject({
      message: expect.stringMatching(/not confirmed yet/),
    });
  });

  it('installs a full bundle on a gateway with no release yet (production node_modules in, other machines’ prebuilds out)', async () => {
    const gw = gateway();
    const fresh = { ...gw, installRoot: join(dir, 'fresh'), running: undefined };
    const file = pack('1.1.0', { reuse: false });
    expect(await applyUpdate(file, fresh)).toEqual({ version: '1.1.0', previous: null });
    const rel = join(fresh.installRoot, 'releases/1.1.0');
    expect(readlinkSync(join(fresh.installRoot, 'current'))).toBe('releases/1.1.0');
    expect(readFileSync(join(rel, 'node_modules/tiny/build/Release/tiny.node')).equals(readFileSync(X64_NODE))).toBe(
      true,
    );
    expect(existsSync(join(rel, 'node_modules/tiny/prebuilds/linux-arm64'))).toBe(false);
    expect(statSync(join(rel, 'node_modules/tiny/bin/tiny.js')).mode & 0o111).not.toBe(0);
    // production packages only (npm ls --omit=dev): node_modules/.bin is not one
    expect(existsSync(join(rel, 'node_modules/.bin'))).toBe(false);
  });

  it('refuses a bundle without node_modules when the installed release has another lockfile', async () => {
    const gw = gateway();
    writeFileSync(join(gw.installRoot, 'releases/1.0.0/package-lock.json'), '{"lockfileVersion":3,"other":1}\n');
    expect(await refusal(applyUpdate(pack('1.1.0'), gw))).toMatchObject({
      code: 'UPDATE_INCOMPATIBLE',
      message: expect.stringMatching(/dependencies differ/),
    });
  });
});

describe('a switch that fails', () => {
  it('leaves nothing pending and current on the running release, so the next update is not blocked', async () => {
    const gw = gateway();
    const file = pack('1.1.0');
    // the switch's temporary link cannot be made: a non-empty directory is in its place
    const obstacle = join(gw.installRoot, `current.tmp-${process.pid}`);
    mkdirSync(obstacle);
    writeFileSync(join(obstacle, 'x'), 'x');
    expect(await refusal(applyUpdate(file, gw))).toMatchObject({ code: 'UPDATE_FAILED' });
    expect(readlinkSync(join(gw.installRoot, 'current'))).toBe('releases/1.0.0');
    const state = JSON.parse(readFileSync(join(gw.dataDir, 'update/state.json'), 'utf8'));
    expect(state.pending).toBeUndefined();
    expect(state.last).toMatchObject({ outcome: 'refused', version: '1.1.0' });
    rmSync(obstacle, { recursive: true });
    expect(await applyUpdate(file, gw)).toEqual({ version: '1.1.0', previous: '1.0.0' });
    expect(readlinkSync(join(gw.installRoot, 'current'))).toBe('releases/1.1.0');
  });
});

describe('a power cut at any instant', () => {
  /**
   * What reaches the disk, and in which order, as the kernel saw it (strace, on a real child
   * process running the built installer): the release's files before the rename that makes it a
   * release, the pending state before the switch, and the switch itself after its rename.
   */
  it('flushes the release, the state and the switch to disk in the order that keeps a runnable current', async () => {
    const gw = gateway();
    const file = pack('1.1.0');
    const trace = join(dir, 'strace.txt');
    const script = `
      const [bundle, installRoot, dataDir] = process.argv.slice(1);
      const { applyUpdate } = await import(${JSON.stringify(join(CHECKOUT, 'dist/gateway/update/index.js'))});
      const { silentLogger } = await import(${JSON.stringify(join(CHECKOUT, 'dist/gateway/core/log.js'))});
      await applyUpdate(bundle, { installRoot, dataDir, log: silentLogger, running: '1.0.0' });`;
    // the child is `node --input-type=module -e SCRIPT BUNDLE INSTALL_ROOT DATA_DIR`, under strace
    const run = spawnSync(
      'strace',
      [
        '-f',
        '-y',
        '-qq',
        '-e',
        'trace=fsync,fdatasync,syncfs,rename,renameat,renameat2',
        '-o',
        trace,
        process.execPath,
        '--input-type=module',
        '-e',
        script,
        file,
        gw.installRoot,
        gw.dataDir,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(run.status, run.stderr).toBe(0);
    expect(readlinkSync(join(gw.installRoot, 'current'))).toBe('releases/1.1.0');
    const calls = readFileSync(trace, 'utf8')
      .split('\n')
      .filter((l) => /(fsync|fdatasync|syncfs|rename)/.test(l) && !/= -1/.test(l));
    const at = (re: RegExp) => calls.findIndex((l) => re.test(l));
    const renameRelease = at(/rename.*\.incoming-1\.1\.0-[0-9a-f]+\/tree.*releases\/1\.1\.0"/);
    const renameCurrent = at(/rename.*current\.tmp-\d+".*\/current"/);
    const stateRenames = calls
      .map((l, i) => (/rename.*".*update\/state\.json"/.test(l) ? i : -1))
      .filter((i) => i >= 0);
    expect(renameRelease).toBeGreaterThan(-1);
    expect(renameCurrent).toBeGreaterThan(renameRelease);
    // the release's files: a syncfs of their filesystem, or an fsync of each
    const flushRelease = at(/syncfs\(|fsync\(\d+<[^>]*\.incoming-1\.1\.0-/);
    expect(flushRelease).toBeGreaterThan(-1);
    expect(flushRelease).toBeLessThan(renameRelease);
    // the pending state: its temporary file fsynced before the rename that precedes the switch
    const pendingRename = stateRenames.filter((i) => i < renameCurrent).pop() ?? -1;
    expect(pendingRename).toBeGreaterThan(-1);
    expect(calls.slice(0, pendingRename).some((l) => /fsync\(\d+<[^>]*update\/state\.json\.[^>]*tmp/.test(l))).toBe(
      true,
    );
    // and the directory of `current` after the switch
    const root = gw.installRoot.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(calls.slice(renameCurrent + 1).some((l) => new RegExp(`fsync\\(\\d+<${root}>\\)`).test(l))).toBe(true);
  });
});

describe('one install at a time', () => {
  it('refuses while another live installer holds the lock, and takes over the lock of a dead one', async () => {
    const gw = gateway();
    const file = pack('1.1.0');
    mkdirSync(join(gw.dataDir, 'update'), { recursive: true });
    const lock = join(gw.dataDir, 'update/install.lock');
    writeFileSync(lock, String(process.ppid)); // a live process that is not us
    expect(await refusal(applyUpdate(file, gw))).toMatchObject({
      code: 'UPDATE_FAILED',
      message: `another update is being installed (process ${process.ppid}); try again when it is done`,
    });
    expect(readFileSync(lock, 'utf8')).toBe(String(process.ppid)); // not ours to remove
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(lock, dead.stdout);
    expect(await applyUpdate(file, gw)).toEqual({ version: '1.1.0', previous: '1.0.0' });
    expect(existsSync(lock)).toBe(false);
  });
});

describe('langbiang update apply: the restart step', () => {
  it('runs the restart command after the switch, and says so when it fails (the release stays installed)', async () => {
    const gw = gateway();
    const { runUpdateApply } = await import('../../gateway/cli/cmd-update.js');
    const marker = join(dir, 'restarted');
    const base = { dataDir: gw.dataDir, installRoot: gw.installRoot, url: 'http://127.0.0.1:9' };
    await runUpdateApply({
      ...base,
      file: pack('1.1.0'),
      restartCommand: ['sh', '-c', `readlink ${gw.installRoot}/current > ${marker}`],
    });
    // the command ran after `current` was switched
    expect(readFileSync(marker, 'utf8').trim()).toBe('releases/1.1.0');
    // (the pending 1.1.0 is confirmed or rolled back before another install; pretend it was confirmed)
    writeFileSync(
      join(gw.dataDir, 'update/state.json'),
      JSON.stringify({ v: 1, confirmed: '1.1.0', previous: '1.0.0' }),
    );
    const err = await refusal(runUpdateApply({ ...base, file: pack('1.2.0'), restartCommand: ['false'] }));
    expect(err).toMatchObject({
      code: 'UPDATE_FAILED',
      message: expect.stringMatching(/1\.2\.0 is installed but "false" failed \(exit 1\); restart the gateway by hand/),
    });
    expect(readlinkSync(join(gw.installRoot, 'current'))).toBe('releases/1.2.0');
  });
});

describe('store read versions', () => {
  it('a release opens a newer store whose read version it knows, and refuses one it does not', () => {
    const dataDir = join(dir, 'store');
    Store.open({ dataDir }).close();
    const set = (version: number, readVersion: number) => {
      const db = new Database(join(dataDir, 'langbiang.db'));
      db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('read_version', ?)").run(String(readVersion));
      db.pragma(`user_version = ${version}`);
      db.close();
    };
    set(SCHEMA_VERSION + 1, SCHEMA_VERSION);
    const st = Store.open({ dataDir });
    st.close();
    const db = new Database(join(dataDir, 'langbiang.db'));
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1); // not migrated down
    db.close();
    set(SCHEMA_VERSION + 1, SCHEMA_VERSION + 1);
    expect(() => Store.open({ dataDir })).toThrow(/newer than this release understands/);
  });
});

describe('health for confirmation', () => {
  it('needs every bus open, every baseline device ok, and the city link when it was up', () => {
    const report = {
      buses: [
        {
          bus: 'b',
          open: true,
          devices: [
            { device: 'm1', state: 'ok' },
            { device: 'm2', state: 'offline' },
          ],
        },
      ],
      sync: { connected: false },
    };
    expect(missingHealth(report, { devices: ['m1'], sync: false })).toEqual([]);
    expect(missingHealth(report, { devices: ['m1', 'm2', 'gone'], sync: true })).toEqual([
      'device m2 answered before the update and is offline now',
      'device gone answered before the update and is not configured now',
      'the city link was up before the update and is not now',
    ]);
    expect(missingHealth({ buses: [{ bus: 'b', open: false, devices: [] }] }, null)).toEqual(['bus b is not open']);
  });
});
