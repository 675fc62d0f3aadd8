import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// `langbiang start` lets V8's optimizing compiler at the drain's per-reading loops only (the
// functions named hot…): a rename that drops the prefix would make a backlog drain ~3× slower
// without any test noticing, and a filter that lets everything through would cost ~10 MB RSS.
// This runs a drain's read-and-encode loop under exactly the launcher's flags for `start`, with
// V8's own trace of what it optimized.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The flags bin/langbiang.js sets for `start`, read from the launcher itself. */
function launcherStartFlags(): string[] {
  const src = readFileSync(join(ROOT, 'bin/langbiang.js'), 'utf8');
  const startBlock = src.slice(src.indexOf("=== 'start'"));
  return [...startBlock.matchAll(/setFlagsFromString\('([^']+)'\)/g)].map((m) => m[1]!);
}

describe('the shipped V8 flags', () => {
  it('optimize the per-reading loops of a drain, and nothing else', () => {
    const flags = launcherStartFlags();
    expect(flags).toContain('--turbo-filter=hot*');
    const dir = mkdtempSync(join(tmpdir(), 'lb-jit-'));
    try {
      const script = join(dir, 'drain.mjs');
      const dist = (p: string) => JSON.stringify(join(ROOT, 'dist', p));
      writeFileSync(
        script,
        `import v8 from 'node:v8';
for (const f of ${JSON.stringify(flags)}) v8.setFlagsFromString(f);
v8.setFlagsFromString('--trace-opt');
const { Store } = await import(${dist('gateway/store/index.js')});
const { encodeColumns } = await import(${dist('cloud-sync/protocol/native.js')});
const store = Store.open({ dataDir: ${JSON.stringify(join(dir, 'data'))}, batchMaxReadings: 5000 });
const t0 = 1764000000000;
for (let b = 0; b < 30; b++) {
  store.append(Array.from({ length: 2000 }, (_, k) => {
    const i = b * 2000 + k;
    return { device: 'dev-' + (i % 40), point: 'p' + (i % 15), value: Math.round(200 + 50 * Math.sin(i / 300)) / 10,
      quality: 'good', ts: t0 + i * 100, mono: i * 100, bootId: 'b', synced: true, unit: '°C' };
  }));
  store.flush();
}
let after = 0;
for (let i = 0; i < 60; i++) {
  const c = store.readColumnsAfter(after, 5000, Number.MAX_SAFE_INTEGER);
  if (c.count === 0) { after = 0; continue; }
  encodeColumns({ epoch: 'ab', firstSeq: after + 1, lastSeq: c.seqs[c.count - 1], count: c.count, seqs: null,
    series: c.series, names: c.names, ts: c.ts, quality: c.quality, values: c.values,
    decimals: c.decimals, scaled: c.scaled }, { level: 6 });
  after = c.seqs[c.count - 1];
}
store.close();
console.log('done');
`,
      );
      const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('done');
      const optimized = new Set(
        [...r.stdout.matchAll(/compiling method \S+ <JSFunction (\S+)[^\n]*target TURBOFAN/g)].map((m) => m[1]!),
      );
      // the loops that run once per reading: the store's decoder, the encoder's columns
      for (const f of ['hotDecodeColumns', 'hotValueColumns', 'hotTsColumn', 'hotSeriesColumn']) {
        expect([...optimized], f).toContain(f);
      }
      expect([...optimized].filter((f) => !f.startsWith('hot'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
