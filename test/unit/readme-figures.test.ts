import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/**
 * The README quotes the last full benchmark run (bench/results/reference.json) and nothing else:
 * when the reference is refreshed, the README's figures must follow it.
 */
const root = new URL('../../', import.meta.url);
const ref = JSON.parse(readFileSync(new URL('bench/results/reference.json', root), 'utf8')) as Record<string, unknown>;
const readme = readFileSync(new URL('README.md', root), 'utf8');
const figures = readme.slice(readme.indexOf('## Figures'), readme.indexOf('## Documentation'));

const num = (k: string) => {
  const v = ref[k];
  if (typeof v !== 'number') throw new Error(`reference.json has no number ${k}`);
  return v;
};
const grouped = (v: number) => Math.round(v).toLocaleString('en-US');

describe('the README figures', () => {
  it('come from a full run, not a quick one', () => {
    expect((ref.meta as { quick: boolean }).quick).toBe(false);
    expect(figures).toContain((ref.meta as { date: string }).date.slice(0, 10));
  });

  it('are the numbers reference.json holds', () => {
    const want = [
      `| ${num('modbus_tx_per_cycle')} |`,
      `${num('wire_bytes_per_reading')} B`,
      `${num('wire_thingsboard_batched_bytes_per_reading')} B (${num('wire_ratio_vs_thingsboard_batched')}×)`,
      `${grouped(num('ingest_readings_per_s'))} readings/s`,
      `${grouped(num('ingest_bare_readings_per_s'))}/s (${num('ingest_ratio_vs_bare')}×)`,
      `${num('disk_bytes_per_reading')} B`,
      `(${num('disk_ratio_vs_raw_row')}×)`,
      `${num('disk_mb_per_day_greenhouse')} MB`,
      `${grouped(num('start_to_first_reading_ms'))} ms`,
      `${grouped(num('drain_confirmed_readings_per_s'))} readings/s`,
      `${grouped(num('drain_naive_readings_per_s'))}/s (${num('drain_confirmed_ratio_vs_naive')}×)`,
      `${num('rss_mb_peak')} MB`,
      `+${num('rss_slope_mb_per_h')} MB/h`,
      `${num('cpu_s_per_hour_500_points')} s/h`,
      `${num('cpu_s_per_hour_500_points_default_flags')} s/h`,
    ];
    for (const w of want) expect(figures, w).toContain(w);
  });
});
