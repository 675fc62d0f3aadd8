import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describeError, LangbiangError } from '../../gateway/core/errors.js';
import type { ReceivedReading, ReceiverStore } from '../receiver/store.js';
import { dayBounds, dayOf, isDay } from './days.js';

/**
 * The analysis archive: a receiver database's readings, one UTC day at a time, as Parquet files
 * partitioned Hive-style — `date=YYYY-MM-DD/gateway=ID/readings.parquet` — with the columns of the
 * export (gateway, seq, device, point, ts, value, unit, quality) in the export's order. DuckDB,
 * Spark, Trino or pandas read years of it without touching the operational database. The files
 * are written by DuckDB (its Node API): no hand-written format.
 *
 * Types: ts is TIMESTAMP WITH TIME ZONE (UTC, microseconds; the readings have milliseconds),
 * seq BIGINT, value DOUBLE. A reading whose value is text (no shipped profile has one) is kept with
 * a null value and counted in the result: Parquet needs one type per column.
 */

export const ARCHIVE_COLUMNS = ['gateway', 'seq', 'device', 'point', 'ts', 'value', 'unit', 'quality'] as const;

export interface ArchivedDay {
  day: string;
  /** the day's directory under the archive root */
  dir: string;
  gateways: number;
  readings: number;
  /** readings whose text value could not go into the DOUBLE column (value left null) */
  textValuesNulled: number;
}

/** What the archive notes beside a day's files: the count it wrote (readers skip `_` files). */
export const MANIFEST = '_langbiang.json';

/** How many closed days back are checked for readings that arrived after they were archived. */
export const RECHECK_DAYS = 14;

/**
 * Days before today (UTC) that hold readings and have no directory in the archive yet — and, of
 * the last RECHECK_DAYS, those archived that the database now holds more readings of (a gateway
 * that was offline over midnight sends its backlog late).
 */
export async function closedDaysToArchive(store: ReceiverStore, outDir: string, now = Date.now()): Promise<string[]> {
  const span = await store.readingSpan();
  if (!span) return [];
  const today = dayOf(now);
  const recheckFrom = dayOf(dayBounds(today).from - RECHECK_DAYS * 86_400_000);
  const days: string[] = [];
  for (let d = dayOf(span.first); d < today && d <= dayOf(span.last); d = nextDay(d)) {
    const dir = join(outDir, `date=${d}`);
    if (!existsSync(dir)) days.push(d);
    else if (d >= recheckFrom && (await heldOn(store, d)) > archivedCount(dir)) days.push(d);
  }
  return days;
}

async function heldOn(store: ReceiverStore, day: string): Promise<number> {
  const { from, to } = dayBounds(day);
  return (await store.activity(from, to)).reduce((n, a) => n + a.readings, 0);
}

function archivedCount(dir: string): number {
  try {
    const m = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as { readings?: unknown };
    return typeof m.readings === 'number' ? m.readings : -1;
  } catch {
    return -1;
  }
}

function nextDay(day: string): string {
  return dayOf(dayBounds(day).from + 86_400_000);
}

/** Hive partition values are path segments: escape what a file system or a reader would misread. */
export function partitionValue(id: string): string {
  return encodeURIComponent(id).replace(/\./g, '%2E');
}

/**
 * Writes one day (replacing an earlier archive of it). The day is written beside the archive and
 * renamed into place: a reader never sees half a day, and a crash leaves only a temp directory.
 */
export async function archiveDay(store: ReceiverStore, outDir: string, day: string): Promise<ArchivedDay> {
  if (!isDay(day)) throw new LangbiangError('USAGE', `--day ${JSON.stringify(day)}: not a date (YYYY-MM-DD)`);
  const root = resolve(outDir);
  mkdirSync(root, { recursive: true });
  const final = join(root, `date=${day}`);
  const tmp = join(root, `.tmp-date=${day}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const duck = await openDuckDb();
  const result: ArchivedDay = { day, dir: final, gateways: 0, readings: 0, textValuesNulled: 0 };
  try {
    const { from, to } = dayBounds(day);
    let gateway: string | undefined;
    let rows: ReceivedReading[] = [];
    const flush = async () => {
      if (gateway === undefined || rows.length === 0) return;
      const dir = join(tmp, `gateway=${partitionValue(gateway)}`);
      mkdirSync(dir);
      result.textValuesNulled += await duck.writeParquet(rows, join(dir, 'readings.parquet'));
      result.gateways++;
      result.readings += rows.length;
      rows = [];
    };
    // pages come ordered by gateway, epoch, seq: one gateway's day is whole before the next starts
    for await (const page of store.readings({ from, to })) {
      for (const r of page) {
        if (r.gateway !== gateway) {
          await flush();
          gateway = r.gateway;
        }
        rows.push(r);
      }
    }
    await flush();
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    duck.close();
  }
  if (result.readings === 0) {
    rmSync(tmp, { recursive: true, force: true });
    return result;
  }
  writeFileSync(
    join(tmp, MANIFEST),
    `${JSON.stringify({ day, readings: result.readings, gateways: result.gateways, archivedAt: new Date().toISOString() })}\n`,
  );
  if (existsSync(final)) {
    const old = join(root, `.old-date=${day}-${process.pid}`);
    renameSync(final, old);
    renameSync(tmp, final);
    rmSync(old, { recursive: true, force: true });
  } else {
    renameSync(tmp, final);
  }
  return result;
}

/** Temp directories a crashed run left behind (safe to remove: nothing reads them). */
export function leftoverTempDirs(outDir: string): string[] {
  if (!existsSync(outDir)) return [];
  return readdirSync(outDir).filter((n) => n.startsWith('.tmp-date=') || n.startsWith('.old-date='));
}

interface DuckWriter {
  /** writes the rows to one Parquet file; returns how many text values became null */
  writeParquet(rows: ReceivedReading[], file: string): Promise<number>;
  close(): void;
}

async function openDuckDb(): Promise<DuckWriter> {
  let duckdb: typeof import('@duckdb/node-api');
  try {
    duckdb = await import('@duckdb/node-api');
  } catch (err) {
    throw new LangbiangError(
      'STORE_FAILED',
      `the archive needs DuckDB (npm package @duckdb/node-api, an optional dependency: npm install @duckdb/node-api), which did not load: ${describeError(err)}`,
    );
  }
  const instance = await duckdb.DuckDBInstance.create(':memory:');
  const con = await instance.connect();
  await con.run("SET TimeZone = 'UTC'");
  return {
    async writeParquet(rows, file) {
      await con.run(
        'CREATE OR REPLACE TABLE day_rows (gateway VARCHAR, seq BIGINT, device VARCHAR, point VARCHAR, ts_ms BIGINT, value DOUBLE, unit VARCHAR, quality VARCHAR)',
      );
      const app = await con.createAppender('day_rows');
      let nulled = 0;
      for (const r of rows) {
        app.appendVarchar(r.gateway);
        app.appendBigInt(BigInt(r.seq));
        app.appendVarchar(r.device);
        app.appendVarchar(r.point);
        app.appendBigInt(BigInt(r.ts));
        if (typeof r.value === 'number') app.appendDouble(r.value);
        else {
          if (typeof r.value === 'string') nulled++;
          app.appendNull();
        }
        if (r.unit === null || r.unit === undefined) app.appendNull();
        else app.appendVarchar(r.unit);
        app.appendVarchar(r.quality);
        app.endRow();
      }
      app.closeSync();
      // insertion order is kept (DuckDB's default): the file is in the export's order
      await con.run(
        `COPY (SELECT gateway, seq, device, point, epoch_ms(ts_ms)::TIMESTAMPTZ AS ts, value, unit, quality FROM day_rows)
         TO '${file.replace(/'/g, "''")}' (FORMAT parquet, COMPRESSION snappy)`,
      );
      return nulled;
    },
    close() {
      con.closeSync();
      instance.closeSync();
    },
  };
}
