import { mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * One SQLite row per reading: the store's layout before schema v3 (it now packs a commit into one
 * row). The bare-loop comparisons insert into this table, created beside the store's own tables,
 * with the store's pragmas and page size: what a plain better-sqlite3 INSERT loop does.
 */
export const PER_READING_TABLE = `CREATE TABLE IF NOT EXISTS readings (
  seq INTEGER PRIMARY KEY, series INTEGER NOT NULL, ts INTEGER NOT NULL, mono INTEGER NOT NULL,
  value REAL, quality INTEGER NOT NULL, flags INTEGER NOT NULL, boot INTEGER NOT NULL)`;

/** One line of the results table: our figure beside the comparison measured in the same run. */
export interface BenchRow {
  metric: string;
  ours: number;
  unit: string;
  /** what we compare against, in words */
  versus: string;
  theirs: number | null;
  /** ours / theirs, or the ratio the target is stated in */
  ratio: number | null;
  target: string;
  /** null when the target is not a pass/fail figure */
  met: boolean | null;
}

export interface BenchResult {
  /** the keys written to latest.json (issue 8); every one a finite number */
  keys: Record<string, number>;
  rows: BenchRow[];
  /** extra figures (not in the table) kept in latest.json for the docs */
  details?: Record<string, unknown>;
}

export interface BenchContext {
  quick: boolean;
  /** a scratch directory under the checkout (SCRATCH_ROOT): removed after the benchmark */
  scratch: string;
}

export type Benchmark = (ctx: BenchContext) => Promise<BenchResult>;

/** Bytes this process has caused to be written to storage so far (Linux /proc/self/io). */
export function writeBytes(pid: number | 'self' = 'self'): number {
  const text = readFileSync(`/proc/${pid}/io`, 'utf8');
  const m = /^write_bytes:\s*(\d+)/m.exec(text);
  if (!m) throw new Error(`/proc/${pid}/io has no write_bytes line`);
  return Number(m[1]);
}

/** Resident set size of a process in MB (VmRSS of /proc/PID/status). */
export function rssMb(pid: number | 'self' = 'self'): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s*(\d+)\s*kB/m.exec(text);
  if (!m) throw new Error(`/proc/${pid}/status has no VmRSS line`);
  return Number(m[1]) / 1024;
}

/**
 * Where benchmarks write: `.bench-scratch/` in the checkout (dist/bench → ../../), on the disk the
 * repository lives on, not the system's temporary directory (often tmpfs, which never writes to a
 * device). Overridable with LANGBIANG_BENCH_DIR.
 */
export const SCRATCH_ROOT =
  process.env.LANGBIANG_BENCH_DIR ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.bench-scratch');

/** statfs f_type of the memory file systems: tmpfs and ramfs */
const MEMORY_FS = new Map([
  [0x01021994, 'tmpfs'],
  [0x858458f6, 'ramfs'],
]);

/** Refuses a directory on a memory file system: bytes written there never reach a disk. */
export function assertRealDisk(dir: string): void {
  const kind = MEMORY_FS.get(statfsSync(dir).type);
  if (kind)
    throw new Error(
      `${dir} is on ${kind}: disk figures need a real file system (set LANGBIANG_BENCH_DIR to a directory on the device being measured)`,
    );
}

export function scratchDir(prefix: string): { dir: string; remove(): void } {
  mkdirSync(SCRATCH_ROOT, { recursive: true });
  const dir = mkdtempSync(join(SCRATCH_ROOT, `${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A random-looking but reproducible sequence, so two runs measure the same data. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
