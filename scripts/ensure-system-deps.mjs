#!/usr/bin/env node
// pretest: the suites use real components (socat PTYs, Mosquitto, Chromium, PostgreSQL).
// Find the Debian programs that are missing and install them with apt-get (as root or via sudo),
// or fail with the one line that would install them. A missing component must fail, not skip.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

// program on PATH (or absolute path) -> Debian package that provides it
const NEEDED = [
  { program: 'socat', pkg: 'socat' },
  { program: 'mosquitto', pkg: 'mosquitto', paths: ['/usr/sbin/mosquitto'] },
  { program: 'openssl', pkg: 'openssl' },
  // the watchdog tests: the real sender, and a stand-in for systemd's notify socket
  { program: 'systemd-notify', pkg: 'systemd' },
  { program: 'python3', pkg: 'python3-minimal' },
  // the update installer's power-cut test reads the order of its system calls (write, fsync, rename)
  { program: 'strace', pkg: 'strace' },
  // the Sparkplug tests decode what the gateway published with protoc, a different tool than its encoder
  { program: 'protoc', pkg: 'protobuf-compiler' },
  { program: 'chromium', pkg: 'chromium', paths: ['/usr/bin/chromium'] },
  // screenshots of the Vietnamese panel need a font with its diacritics
  {
    program: 'fonts-dejavu-core',
    pkg: 'fonts-dejavu-core',
    paths: ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf'],
    onlyPaths: true,
  },
  // the server binaries, not just the psql client: Debian keeps them under /usr/lib/postgresql/<ver>/bin
  { program: 'initdb', pkg: 'postgresql', paths: postgresBinaries(), onlyPaths: true },
];

function postgresBinaries() {
  try {
    return readdirSync('/usr/lib/postgresql').map((v) => `/usr/lib/postgresql/${v}/bin/initdb`);
  } catch {
    return [];
  }
}

function has({ program, paths = [], onlyPaths = false }) {
  if (paths.some((p) => existsSync(p))) return true;
  if (onlyPaths) return false;
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

const missing = NEEDED.filter((n) => !has(n));
if (missing.length === 0) process.exit(0);

const pkgs = [...new Set(missing.map((m) => m.pkg))];
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const haveSudo = spawnSync('sh', ['-c', 'command -v sudo'], { stdio: 'ignore' }).status === 0;
const prefix = isRoot ? [] : haveSudo ? ['sudo', '-n'] : null;
const line = `apt-get update && apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;

if (!prefix || spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status !== 0) {
  process.stderr.write(`The test suites need: ${pkgs.join(', ')}. Install them with:\n  sudo ${line}\n`);
  process.exit(1);
}

process.stderr.write(`pretest: installing ${pkgs.join(' ')} with apt-get\n`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
try {
  execFileSync(prefix[0] ?? 'apt-get', [...prefix.slice(1), ...(prefix.length ? ['apt-get'] : []), 'update', '-qq'], {
    stdio: 'inherit',
    env,
  });
  execFileSync(
    prefix[0] ?? 'apt-get',
    [
      ...prefix.slice(1),
      ...(prefix.length ? ['apt-get'] : []),
      'install',
      '-y',
      '-qq',
      '--no-install-recommends',
      ...pkgs,
    ],
    { stdio: 'inherit', env },
  );
} catch {
  process.stderr.write(`pretest: apt-get failed. Install them with:\n  sudo ${line}\n`);
  process.exit(1);
}
const still = NEEDED.map((n) => (n.pkg === 'postgresql' ? { ...n, paths: postgresBinaries() } : n)).filter(
  (n) => !has(n),
);
if (still.length) {
  process.stderr.write(`pretest: still missing after install: ${still.map((s) => s.program).join(', ')}\n`);
  process.exit(1);
}
