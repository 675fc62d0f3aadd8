import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const RUN = fileURLToPath(new URL('../../dist/bench/run.js', import.meta.url));

/** The keys issues 8 and 13 ask latest.json for; every one must be a finite number. */
const KEYS = [
  'drain_readings_per_s',
  'drain_ratio_vs_naive',
  'drain_confirmed_readings_per_s',
  'drain_confirmed_ratio_vs_naive',
  'wire_bytes_per_reading',
  'wire_ratio_vs_thingsboard',
  'wire_thingsboard_batched_bytes_per_reading',
  'wire_ratio_vs_thingsboard_batched',
  'disk_bytes_per_reading',
  'disk_ratio_vs_raw_row',
  'disk_mb_per_day_greenhouse',
  'ingest_ratio_vs_bare',
  'ingest_store_overhead',
  'rss_mb_start',
  'rss_mb_peak',
  'rss_mb_end',
  'rss_slope_mb_per_h',
  'cpu_s_per_hour_500_points',
  'cpu_s_per_hour_500_points_default_flags',
  'modbus_tx_per_cycle',
  'modbus_tx_ratio_vs_optimal',
  'start_to_first_reading_ms',
  'receivers_1_readings_per_s',
  'receivers_2_readings_per_s',
  'receivers_4_readings_per_s',
  'receivers_readings_per_receiver_core',
];

// A smoke test that the benchmarks still run, not a speed test: no figure is compared to a target.
describe('npm run bench -- --quick', () => {
  const dir = mkdtempSync(join(tmpdir(), 'langbiang-bench-smoke-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every benchmark and writes every key as a finite number', async () => {
    const out = join(dir, 'latest.json');
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, [RUN, '--quick', `--out=${out}`], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.on('close', (c) => resolve({ code: c, output }));
    });
    expect(code, output).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown> & {
      errors: Record<string, string>;
      meta: { quick: boolean };
    };
    expect(report.errors).toEqual({});
    expect(report.meta.quick).toBe(true);
    for (const key of KEYS) {
      expect(typeof report[key], key).toBe('number');
      expect(Number.isFinite(report[key] as number), key).toBe(true);
    }
    expect(output).toMatch(/\| metric\s+\| ours/);
  }, 420_000); // the gateway as shipped starts six times (disk ×2, CPU ×2, RSS, drain), and the receivers scale
});
