import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult, BenchRow } from './common.js';

/**
 * `npm run bench [-- --quick] [-- --only a,b]`: runs each benchmark in a fresh child process,
 * prints the table (our figure, the comparison measured in the same run, the ratio, the target)
 * and writes bench/results/latest.json. Never fails on speed: only a benchmark that crashes makes
 * the exit code non-zero.
 */
const BENCHMARKS = ['modbus-tx', 'wire', 'ingest', 'disk', 'start', 'drain', 'cpu', 'rss', 'receiver-scale'] as const;
const here = dirname(fileURLToPath(import.meta.url));
/** the source tree's bench/results (dist/bench/run.js → ../../bench/results) */
const RESULTS_DIR = join(here, '..', '..', 'bench', 'results');
const RESULT_PREFIX = 'BENCH_RESULT ';

interface Outcome {
  name: string;
  ms: number;
  result?: BenchResult;
  error?: string;
}

function runChild(name: string, quick: boolean): Promise<Outcome> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(here, 'child.js'), name, ...(quick ? ['--quick'] : [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      process.stderr.write(d);
    });
    child.on('close', (code, signal) => {
      const ms = Date.now() - t0;
      const line = out.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (code !== 0 || !line) {
        resolve({
          name,
          ms,
          error: `exit ${code ?? signal}: ${err.trim().split('\n').slice(-5).join(' | ') || 'no result'}`,
        });
        return;
      }
      try {
        resolve({ name, ms, result: JSON.parse(line.slice(RESULT_PREFIX.length)) as BenchResult });
      } catch (e) {
        resolve({ name, ms, error: `unreadable result: ${String(e)}` });
      }
    });
  });
}

function fmt(x: number | null): string {
  if (x === null) return '—';
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  return String(Number(x.toPrecision(4)));
}

function table(rows: BenchRow[]): string {
  const head = ['metric', 'ours', 'comparison', 'theirs', 'ratio', 'target', 'met'];
  const body = rows.map((r) => [
    r.metric,
    `${fmt(r.ours)} ${r.unit}`.trim(),
    r.versus,
    fmt(r.theirs),
    r.ratio === null ? '—' : `${fmt(r.ratio)}×`,
    r.target,
    r.met === null ? '' : r.met ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const onlyArg = args.find((a) => a.startsWith('--only='))?.slice('--only='.length);
  const only = onlyArg ? onlyArg.split(',') : null;
  const outArg = args.find((a) => a.startsWith('--out='))?.slice('--out='.length);
  const names = BENCHMARKS.filter((n) => !only || only.includes(n));

  const outcomes: Outcome[] = [];
  for (const name of names) {
    process.stderr.write(`bench: ${name}${quick ? ' (quick)' : ''}…\n`);
    const o = await runChild(name, quick);
    process.stderr.write(
      `bench: ${name} ${o.error ? `FAILED: ${o.error}` : 'done'} in ${(o.ms / 1000).toFixed(1)} s\n`,
    );
    outcomes.push(o);
  }

  const keys: Record<string, number> = {};
  const rows: BenchRow[] = [];
  const details: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const o of outcomes) {
    if (o.error) errors[o.name] = o.error;
    if (!o.result) continue;
    Object.assign(keys, o.result.keys);
    rows.push(...o.result.rows);
    details[o.name] = { seconds: Math.round(o.ms / 100) / 10, ...o.result.details };
  }
  const cpu = os.cpus();
  const report = {
    ...keys,
    meta: {
      date: new Date().toISOString(),
      quick,
      node: process.version,
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      cpu: `${cpu.length} × ${cpu[0]?.model ?? 'unknown'}`,
      memMb: Math.round(os.totalmem() / 2 ** 20),
    },
    rows,
    details,
    errors,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = outArg ?? join(RESULTS_DIR, 'latest.json');
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);

  process.stdout.write(`\n${table(rows)}\n\n`);
  for (const [name, e] of Object.entries(errors)) process.stdout.write(`${name}: FAILED ${e}\n`);
  process.stdout.write(`results written to ${file}${quick ? ' (quick sizes: smoke test, not the figures)' : ''}\n`);
  if (Object.keys(errors).length > 0) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
