import { closeSync, openSync, readSync } from 'node:fs';
import type { ReleaseArch } from './manifest.js';

/**
 * The machine a native module (`.node`, an ELF shared object) was built for, from its ELF header:
 * EI_CLASS (32/64-bit) at byte 4, EI_DATA (byte order) at 5, e_machine at 18. A bundle labelled
 * arm64 with an x86-64 better-sqlite3 inside would install and then fail to load on the Pi.
 */
const EXPECTED: Record<ReleaseArch, { bits: 32 | 64; machine: number; name: string }> = {
  x64: { bits: 64, machine: 62, name: 'x86-64' }, // EM_X86_64
  arm64: { bits: 64, machine: 183, name: 'AArch64' }, // EM_AARCH64
  armv7: { bits: 32, machine: 40, name: 'ARM (32-bit)' }, // EM_ARM
};

const NAMES: Record<number, string> = { 3: 'x86', 40: 'ARM (32-bit)', 62: 'x86-64', 183: 'AArch64', 243: 'RISC-V' };

export interface ElfInfo {
  bits: 32 | 64;
  machine: number;
  name: string;
}

/** null when the file is not a little-endian ELF object (a Mach-O or PE prebuild, or not a binary). */
export function elfInfo(file: string): ElfInfo | null {
  const head = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  try {
    if (readSync(fd, head, 0, 20, 0) < 20) return null;
  } finally {
    closeSync(fd);
  }
  if (head[0] !== 0x7f || head.toString('latin1', 1, 4) !== 'ELF') return null;
  const bits = head[4] === 1 ? 32 : head[4] === 2 ? 64 : null;
  if (!bits || head[5] !== 1) return null;
  const machine = head.readUInt16LE(18);
  return { bits, machine, name: NAMES[machine] ?? `machine ${machine}` };
}

/** Why this native module cannot be in a bundle for `arch`; null when it can. */
export function nativeModuleProblem(file: string, arch: ReleaseArch, label = file): string | null {
  const want = EXPECTED[arch];
  const info = elfInfo(file);
  if (!info) return `${label} is not a Linux (ELF) native module`;
  if (info.machine !== want.machine || info.bits !== want.bits)
    return `${label} is built for ${info.name} (${info.bits}-bit), not ${want.name} (${arch})`;
  return null;
}

/** The directory name node-gyp-build and prebuildify use for this arch's prebuilds (prebuilds/linux-<x>/). */
export function prebuildDirFor(arch: ReleaseArch): string {
  return `linux-${arch === 'armv7' ? 'arm' : arch}`;
}
