import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NATIVE_VERSION } from '../../cloud-sync/protocol/native.js';
import type { WireReading } from '../../cloud-sync/protocol/types.js';
import { openReceiverStore } from '../../cloud-sync/receiver/index.js';
import { runCli } from '../helpers/cli.js';
import { type Postgres, startPostgres } from '../helpers/postgres.js';

/**
 * The analysis archive, written by DuckDB and read back by hyparquet — a separate Parquet
 * implementation (pure JavaScript, no code shared with DuckDB's C++ reader and writer) — must equal
 * `langbiang export --format jsonl` of the same receiver database and day, row for row.
 */

let pg: Postgres;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lb-archive-'));
  pg = await startPostgres();
}, 60_000);

afterAll(async () => {
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const DAY = 86_400_000;
const today0 = Math.floor(Date.now() / DAY) * DAY;
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Two gateways over the day before yesterday, yesterday and today: numbers, f32 noise, nulls. */
async function fill(url: string): Promise<void> {
  const store = await openReceiverStore(url);
  try {
    for (const gateway of ['gw-north', 'gw-south']) {
      for (const epoch of ['e1', 'e2']) {
        const readings: WireReading[] = [];
        // 3 days in 40 min steps, starting 2 days back, crossing each midnight
        for (let i = 0; i < 3 * 36; i++) {
          const seq = i + 1;
          const kind = seq % 4;
          readings.push({
            seq,
            device: kind < 2 ? 'rain-1' : 'aq-1',
            point: ['rainfall', 'temperature', 'pm2_5', 'no2'][kind]!,
            ts: today0 - 2 * DAY + i * 40 * 60_000 + (epoch === 'e2' ? 7 : 0),
            value: kind === 0 ? seq / 10 : kind === 1 ? Math.fround(18 + seq / 3) : seq % 9 === 0 ? null : seq * 1.5,
            unit: kind === 0 ? 'mm' : kind === 1 ? '°C' : kind === 2 ? 'µg/m³' : null,
            quality: seq % 9 === 0 ? 'timeout' : 'good',
          });
        }
        await store.writeTelemetry(
          { v: NATIVE_VERSION, gateway, epoch, firstSeq: 1, lastSeq: readings.length, readings },
          Date.now(),
        );
      }
    }
  } finally {
    await store.close();
  }
}

async function exportDay(url: string, d: string): Promise<Record<string, unknown>[]> {
  const r = await runCli([
    'export',
    '--receiver-db',
    url,
    '--format',
    'jsonl',
    '--from',
    `${d}T00:00:00.000Z`,
    '--to',
    `${d}T23:59:59.999Z`,
  ]);
  expect(r.code).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function readArchiveDay(out: string, d: string): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  const dayDir = join(out, `date=${d}`);
  for (const part of readdirSync(dayDir)
    .filter((p) => p.startsWith('gateway='))
    .sort()) {
    const file = await asyncBufferFromFile(join(dayDir, part, 'readings.parquet'));
    const metadata = await parquetMetadataAsync(file);
    expect(parquetSchema(metadata).children.map((c) => c.element.name)).toEqual([
      'gateway',
      'seq',
      'device',
      'point',
      'ts',
      'value',
      'unit',
      'quality',
    ]);
    for (const r of await parquetReadObjects({ file, metadata })) {
      expect(part).toBe(`gateway=${r.gateway}`);
      rows.push({
        ...r,
        seq: Number(r.seq),
        ts: (r.ts as Date).toISOString(),
      });
    }
  }
  return rows;
}

describe.each(['sqlite', 'postgres'] as const)('langbiang archive on %s', (backend) => {
  it('writes closed days as Parquet equal to the export, row for row; today only on request', async () => {
    const url = backend === 'sqlite' ? join(dir, 'rx.db') : await pg.createDatabase('archive_rx');
    await fill(url);
    const out = join(dir, `archive-${backend}`);
    const first = await runCli(['archive', '--receiver-db', url, '--out', out, '--json'], { timeoutMs: 60_000 });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const days = (JSON.parse(first.stdout) as { days: { day: string; readings: number; gateways: number }[] }).days;
    // the closed days only: today is still being written
    expect(days.map((d) => d.day)).toEqual([day(today0 - 2 * DAY), day(today0 - DAY)]);
    expect(days.every((d) => d.gateways === 2 && d.readings === 2 * 2 * 36)).toBe(true);
    expect(existsSync(join(out, `date=${day(today0)}`))).toBe(false);

    for (const d of days) {
      const exported = await exportDay(url, d.day);
      const archived = await readArchiveDay(out, d.day);
      expect(exported.length).toBe(d.readings);
      expect(archived).toEqual(exported);
    }

    // a second run finds nothing to do; --day archives any day, today included
    const again = await runCli(['archive', '--receiver-db', url, '--out', out]);
    expect(again.stdout).toMatch(/every closed day is archived already/);
    // a reading of yesterday arrives late (a gateway offline over midnight): the next run re-archives yesterday
    const late = await openReceiverStore(url);
    await late.writeTelemetry(
      {
        v: NATIVE_VERSION,
        gateway: 'gw-late',
        epoch: 'e1',
        firstSeq: 1,
        lastSeq: 1,
        readings: [
          {
            seq: 1,
            device: 'rain-1',
            point: 'rainfall',
            ts: today0 - DAY + 5,
            value: 1.5,
            unit: 'mm',
            quality: 'good',
          },
        ],
      },
      Date.now(),
    );
    await late.close();
    const rerun = await runCli(['archive', '--receiver-db', url, '--out', out]);
    expect(rerun.stdout).toBe(
      `${day(today0 - DAY)}: ${2 * 2 * 36 + 1} readings of 3 gateways → ${join(out, `date=${day(today0 - DAY)}`)}\n`,
    );
    expect(await readArchiveDay(out, day(today0 - DAY))).toEqual(await exportDay(url, day(today0 - DAY)));
    const todayRun = await runCli(['archive', '--receiver-db', url, '--out', out, '--day', day(today0)]);
    expect(todayRun.code).toBe(0);
    expect(await readArchiveDay(out, day(today0))).toEqual(await exportDay(url, day(today0)));
    // nothing half-written is left beside the days
    expect(readdirSync(out).sort()).toEqual(
      [day(today0 - 2 * DAY), day(today0 - DAY), day(today0)].map((d) => `date=${d}`),
    );
  }, 90_000);
});

it('langbiang archive refuses a bad --day with one sentence', async () => {
  const r = await runCli([
    'archive',
    '--receiver-db',
    join(dir, 'rx.db'),
    '--out',
    join(dir, 'x'),
    '--day',
    '2026-02-30',
  ]);
  expect(r.code).toBe(1);
  expect(r.stderr).toBe('langbiang: --day "2026-02-30": not a date (YYYY-MM-DD)\n');
});
