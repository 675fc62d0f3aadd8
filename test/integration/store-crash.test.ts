import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_FILE, Store } from '../../gateway/store/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CHILD = join(ROOT, 'test/helpers/store-ingest-child.mjs');
const ROUNDS = 6;

let work: string;
let storeModuleUrl: string;

/**
 * The child runs the store as plain Node would run it in production: compiled JavaScript. It is
 * compiled here from the current source (not taken from dist/, which may be stale or absent).
 */
function compileStore(outDir: string): string {
  const entry = join(ROOT, 'gateway/store/index.ts');
  const program = ts.createProgram([entry], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    esModuleInterop: true,
    skipLibCheck: true,
    types: ['node'],
    rootDir: ROOT,
    outDir,
  });
  const result = program.emit();
  if (result.emitSkipped) throw new Error('compiling the store for the child failed');
  // Let the compiled files find better-sqlite3 the way they would in the package.
  symlinkSync(join(ROOT, 'node_modules'), join(outDir, 'node_modules'), 'dir');
  return pathToFileURL(join(outDir, 'gateway/store/index.js')).href;
}

interface Round {
  openedAt: number;
  epoch: string;
  committed: number[];
  exit: { code: number | null; signal: NodeJS.Signals | null };
  stderr: string;
}

function runAndKill(dataDir: string, synchronous: 'full' | 'normal', killAfterMs: number): Promise<Round> {
  return new Promise((resolveRound, reject) => {
    const child: ChildProcess = spawn(process.execPath, [CHILD, storeModuleUrl, dataDir, synchronous], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const round: Round = { openedAt: -1, epoch: '', committed: [], exit: { code: null, signal: null }, stderr: '' };
    let buf = '';
    let timer: NodeJS.Timeout | null = null;
    const deadline = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const [kind, a, b] = buf.slice(0, nl).split(' ');
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        if (kind === 'open') {
          round.openedAt = Number(a);
          round.epoch = b!;
          timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        } else if (kind === 'committed') {
          round.committed.push(Number(a));
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => {
      round.stderr += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      clearTimeout(deadline);
      round.exit = { code, signal };
      resolveRound(round);
    });
  });
}

describe('store survives SIGKILL at random moments', () => {
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'lb-crash-'));
    storeModuleUrl = compileStore(join(work, 'build'));
  }, 120_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it(`keeps every reported commit, without holes, over ${ROUNDS} kill rounds`, async () => {
    const dataDir = join(work, 'data');
    let epoch = '';
    let lastSeq = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const killAfter = 150 + Math.floor(Math.random() * 450);
      const round = await runAndKill(dataDir, r % 2 ? 'normal' : 'full', killAfter);
      expect(round.stderr).toBe('');
      expect(round.exit.signal).toBe('SIGKILL');
      // The child continues from what the previous round left, in the same seq space.
      expect(round.openedAt).toBe(lastSeq);
      if (epoch) expect(round.epoch).toBe(epoch);
      epoch = round.epoch;
      expect(round.committed.length).toBeGreaterThan(0);

      const db = new Database(join(dataDir, STORE_FILE), { readonly: true });
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        const { n, lo, hi } = db
          .prepare('SELECT sum(n) AS n, min(seq) AS lo, max(seq + n - 1) AS hi FROM batches')
          .get() as {
          n: number;
          lo: number;
          hi: number;
        };
        // Each row of readings (one per commit) starts right after the one before it.
        const unjoined = db
          .prepare(
            'SELECT count(*) FROM batches b WHERE seq > 1 AND NOT EXISTS (SELECT 1 FROM batches p WHERE p.seq + p.n = b.seq)',
          )
          .pluck()
          .get();
        expect(unjoined).toBe(0);
        // No holes: seqs 1..hi, each once.
        expect(lo).toBe(1);
        expect(n).toBe(hi);
        // Every seq the child reported as committed is there.
        const reported = Math.max(...round.committed);
        expect(hi).toBeGreaterThanOrEqual(reported);
        expect(hi).toBeGreaterThan(lastSeq);
        lastSeq = hi;
      } finally {
        db.close();
      }
    }
    // And the Store itself opens it and agrees.
    const s = Store.open({ dataDir });
    try {
      expect(s.epoch).toBe(epoch);
      expect(s.lastSeq()).toBe(lastSeq);
      expect(s.stats()).toMatchObject({ readings: lastSeq, firstSeq: 1, lastSeq });
      s.append([
        { device: 'd', point: 'p', value: 1, quality: 'good', ts: Date.now(), mono: 0, bootId: 'x', synced: true },
      ]);
      s.flush();
      expect(s.lastSeq()).toBe(lastSeq + 1);
    } finally {
      s.close();
    }
  }, 120_000);
});
