import type { Pool, PoolClient } from 'pg';
import { describeError, LangbiangError } from '../../gateway/core/errors.js';
import type { Quality } from '../../gateway/core/reading.js';
import type { StatusMessage } from '../protocol/status.js';
import type { EventsBatch, TelemetryBatch } from '../protocol/types.js';
import { DayPartitions } from './partitions.js';
import {
  type EventQuery,
  type GatewayActivity,
  RECEIVER_SCHEMA_VERSION,
  type ReadingQuery,
  type ReadingSpan,
  type ReceivedEvent,
  type ReceivedReading,
  type ReceiverStore,
  redactUrl,
  type StoredStatus,
  splitValue,
  type WatermarkRow,
  type WriteResult,
} from './store.js';
import {
  type Coverage,
  eventsCoverage,
  nextWatermark,
  type Range,
  type Stream,
  telemetryCoverage,
  type Watermarks,
} from './watermark.js';

export const MIGRATIONS: readonly string[] = [
  // v1
  `CREATE TABLE langbiang_readings (
     gateway text NOT NULL,
     epoch text NOT NULL,
     seq bigint NOT NULL,
     device text NOT NULL,
     point text NOT NULL,
     ts bigint NOT NULL,
     value_num double precision,
     value_text text,
     unit text,
     quality text NOT NULL,
     received_at bigint NOT NULL,
     PRIMARY KEY (gateway, epoch, seq)
   );
   CREATE INDEX langbiang_readings_device_ts ON langbiang_readings (device, ts);
   CREATE TABLE langbiang_events (
     gateway text NOT NULL,
     epoch text NOT NULL,
     id bigint NOT NULL,
     kind text NOT NULL,
     ts bigint NOT NULL,
     data jsonb NOT NULL,
     received_at bigint NOT NULL,
     PRIMARY KEY (gateway, epoch, id)
   );`,
  // v2: end-to-end acknowledgement (watermark.ts). Existing data gets no watermark: a gateway's
  // first batch after its update starts from its confirmed cursor and says so, which sets it.
  `CREATE TABLE langbiang_watermarks (
     gateway text NOT NULL,
     epoch text NOT NULL,
     stream text NOT NULL,
     upto bigint NOT NULL,
     settled bigint NOT NULL DEFAULT 0,
     updated_at bigint NOT NULL,
     PRIMARY KEY (gateway, epoch, stream)
   );
   CREATE TABLE langbiang_coverage (
     gateway text NOT NULL,
     epoch text NOT NULL,
     stream text NOT NULL,
     first bigint NOT NULL,
     last bigint NOT NULL,
     PRIMARY KEY (gateway, epoch, stream, first)
   );`,
  // v3: readings partitioned by day of reading time (partitions.ts), so that retention drops a
  // day in one statement and the archive and open data read whole days. The rows already held are
  // not copied: the old table becomes the default partition as it is. The primary key must hold
  // the partition key; a reading's ts never changes, so (gateway, epoch, seq, ts) still makes a
  // redelivery a duplicate (the old table's key is rebuilt once, in this migration). And the fleet view keeps each gateway's latest retained status.
  `ALTER TABLE langbiang_readings RENAME TO langbiang_readings_before_v3;
   ALTER TABLE langbiang_readings_before_v3 DROP CONSTRAINT langbiang_readings_pkey,
     ADD CONSTRAINT langbiang_readings_before_v3_pkey PRIMARY KEY (gateway, epoch, seq, ts);
   ALTER INDEX langbiang_readings_device_ts RENAME TO langbiang_readings_before_v3_device_ts;
   CREATE TABLE langbiang_readings (
     gateway text NOT NULL,
     epoch text NOT NULL,
     seq bigint NOT NULL,
     device text NOT NULL,
     point text NOT NULL,
     ts bigint NOT NULL,
     value_num double precision,
     value_text text,
     unit text,
     quality text NOT NULL,
     received_at bigint NOT NULL,
     PRIMARY KEY (gateway, epoch, seq, ts)
   ) PARTITION BY RANGE (ts);
   ALTER TABLE langbiang_readings ATTACH PARTITION langbiang_readings_before_v3 DEFAULT;
   CREATE INDEX langbiang_readings_device_ts ON langbiang_readings (device, ts);
   CREATE INDEX langbiang_readings_ts ON langbiang_readings (ts);
   CREATE TABLE langbiang_gateway_status (
     gateway text PRIMARY KEY,
     state text NOT NULL,
     status_ts bigint NOT NULL,
     received_at bigint NOT NULL,
     status jsonb NOT NULL
   );`,
];

/** Serialises schema changes between receivers starting at the same moment. */
const MIGRATION_LOCK = 0x4c625231;

/**
 * The backend for scale: several receivers (one shared MQTT subscription) writing into one
 * PostgreSQL. A batch is one INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING: one round
 * trip and one commit per MQTT message, whatever its size, and a redelivered batch inserts nothing.
 * Tables are prefixed `langbiang_` so the receiver can share a database with the city's own.
 */
export class PgReceiverStore implements ReceiverStore {
  readonly backend = 'postgres' as const;
  readonly location: string;
  private pool: Pool | undefined;

  private readonly readonly: boolean;
  private partitions: DayPartitions | undefined;

  constructor(
    private readonly url: string,
    opts: { readonly?: boolean } = {},
  ) {
    this.location = redactUrl(url);
    this.readonly = opts.readonly === true;
  }

  async init(): Promise<void> {
    let pg: typeof import('pg');
    try {
      pg = await import('pg');
    } catch (err) {
      throw new LangbiangError(
        'STORE_FAILED',
        `the PostgreSQL driver (npm package pg) is not installed: ${describeError(err)}`,
      );
    }
    const PoolCtor = (pg.default?.Pool ?? pg.Pool) as typeof Pool;
    this.pool = new PoolCtor({
      connectionString: this.url,
      max: 4,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 10_000,
    });
    // An idle client losing its server (restart, failover) must not crash the process.
    this.pool.on('error', () => {});
    if (this.readonly) {
      const [r] = await this.query<{ version: string | null }>(
        "SELECT CASE WHEN to_regclass('langbiang_receiver_meta') IS NULL THEN NULL ELSE (SELECT value FROM langbiang_receiver_meta WHERE key = 'schema_version') END AS version",
      );
      const found = r?.version ? Number(r.version) : 0;
      if (found === 0)
        throw new LangbiangError('USAGE', `${this.location} holds no receiver tables (run the receiver on it first)`);
      if (found > RECEIVER_SCHEMA_VERSION) throw tooNew(this.location, found);
      return;
    }
    await this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query('CREATE TABLE IF NOT EXISTS langbiang_receiver_meta (key text PRIMARY KEY, value text NOT NULL)');
      const r = await c.query<{ value: string }>(
        "SELECT value FROM langbiang_receiver_meta WHERE key = 'schema_version'",
      );
      const found = r.rows[0] ? Number(r.rows[0].value) : 0;
      if (found > RECEIVER_SCHEMA_VERSION) throw tooNew(this.location, found);
      for (let v = found; v < RECEIVER_SCHEMA_VERSION; v++) await c.query(MIGRATIONS[v]!);
      await c.query(
        `INSERT INTO langbiang_receiver_meta (key, value) VALUES ('schema_version', $1)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
        [String(RECEIVER_SCHEMA_VERSION)],
      );
    }, 'open');
  }

  private async tx<T>(fn: (c: PoolClient) => Promise<T>, what: string): Promise<T> {
    if (!this.pool) throw new LangbiangError('STORE_FAILED', 'the receiver database is closed');
    let c: PoolClient;
    try {
      c = await this.pool.connect();
    } catch (err) {
      throw new LangbiangError('STORE_FAILED', `cannot connect to ${this.location}: ${describeError(err)}`, undefined, {
        cause: err,
      });
    }
    let broken = false;
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {
        broken = true;
      });
      if (err instanceof LangbiangError) throw err;
      throw new LangbiangError('STORE_FAILED', `receiver database ${what} failed: ${describeError(err)}`, undefined, {
        cause: err,
      });
    } finally {
      c.release(broken);
    }
  }

  async writeTelemetry(b: TelemetryBatch, receivedAt: number): Promise<WriteResult> {
    const n = b.readings.length;
    const seq: number[] = new Array(n);
    const device: string[] = new Array(n);
    const point: string[] = new Array(n);
    const ts: number[] = new Array(n);
    const num: (number | null)[] = new Array(n);
    const text: (string | null)[] = new Array(n);
    const unit: (string | null)[] = new Array(n);
    const quality: string[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const r = b.readings[i]!;
      const v = splitValue(r.value);
      seq[i] = r.seq;
      device[i] = r.device;
      point[i] = r.point;
      ts[i] = r.ts;
      num[i] = v.num;
      text[i] = v.text;
      unit[i] = r.unit;
      quality[i] = r.quality;
    }
    if (n > 0) await this.dayPartitions().ensure(ts);
    return this.tx(async (c) => {
      let inserted = 0;
      if (n > 0) {
        const res = await c.query(
          `INSERT INTO langbiang_readings (gateway, epoch, seq, device, point, ts, value_num, value_text, unit, quality, received_at)
           SELECT $1, $2, u.seq, u.device, u.point, u.ts, u.num, u.text, u.unit, u.quality, $11
           FROM unnest($3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::float8[], $8::text[], $9::text[], $10::text[])
             AS u(seq, device, point, ts, num, text, unit, quality)
           ON CONFLICT DO NOTHING`,
          [b.gateway, b.epoch, seq, device, point, ts, num, text, unit, quality, receivedAt],
        );
        inserted = res.rowCount ?? 0;
      }
      const watermarks = await this.advance(c, b.gateway, b.epoch, telemetryCoverage(b), receivedAt);
      return { inserted, duplicates: n - inserted, watermarks };
    }, 'write');
  }

  async writeEvents(b: EventsBatch, receivedAt: number): Promise<WriteResult> {
    return this.tx(async (c) => {
      let inserted = 0;
      if (b.events.length === 0) {
        const watermarks = await this.advance(c, b.gateway, b.epoch, eventsCoverage(b), receivedAt);
        return { inserted, duplicates: 0, watermarks };
      }
      const res = await c.query(
        `INSERT INTO langbiang_events (gateway, epoch, id, kind, ts, data, received_at)
         SELECT $1, $2, u.id, u.kind, u.ts, u.data::jsonb, $7
         FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::text[]) AS u(id, kind, ts, data)
         ON CONFLICT DO NOTHING`,
        [
          b.gateway,
          b.epoch,
          b.events.map((e) => e.id),
          b.events.map((e) => e.kind),
          b.events.map((e) => e.ts),
          b.events.map((e) => JSON.stringify(e.data)),
          receivedAt,
        ],
      );
      inserted = res.rowCount ?? 0;
      const watermarks = await this.advance(c, b.gateway, b.epoch, eventsCoverage(b), receivedAt);
      return { inserted, duplicates: b.events.length - inserted, watermarks };
    }, 'write');
  }

  /**
   * Inside the write's transaction, after the data. The watermark row is locked (FOR UPDATE)
   * before the ranges are read: a receiver committing the same gateway's messages at the same
   * moment waits, then sees this one's ranges, so the last to commit computes over all of them.
   * Readings before events, always: two receivers never wait for each other in a circle.
   */
  private async advance(
    c: PoolClient,
    gateway: string,
    epoch: string,
    cov: Coverage,
    now: number,
  ): Promise<Watermarks> {
    return {
      seq: await this.advanceStream(c, gateway, epoch, 'readings', cov.readings, cov.settledReadings, now),
      events: await this.advanceStream(c, gateway, epoch, 'events', cov.events, cov.settledEvents, now),
    };
  }

  private async advanceStream(
    c: PoolClient,
    gateway: string,
    epoch: string,
    stream: Stream,
    added: Range[],
    settled: number | undefined,
    now: number,
  ): Promise<number> {
    const key = [gateway, epoch, stream];
    if (added.length === 0 && !settled) {
      const r = await c.query<{ upto: string }>(
        'SELECT upto FROM langbiang_watermarks WHERE gateway = $1 AND epoch = $2 AND stream = $3',
        key,
      );
      return r.rows[0] ? Number(r.rows[0].upto) : 0;
    }
    // Lock the row; made once per (gateway, epoch, stream), so the common path is one query.
    const lockRow = async () =>
      (
        await c.query<{ upto: string; settled: string }>(
          'SELECT upto, settled FROM langbiang_watermarks WHERE gateway = $1 AND epoch = $2 AND stream = $3 FOR UPDATE',
          key,
        )
      ).rows[0];
    let row = await lockRow();
    if (!row) {
      await c.query(
        `INSERT INTO langbiang_watermarks (gateway, epoch, stream, upto, settled, updated_at) VALUES ($1, $2, $3, 0, 0, $4)
         ON CONFLICT DO NOTHING`,
        [...key, now],
      );
      row = (await lockRow())!;
    }
    const above = (
      await c.query<{ first: string; last: string }>(
        'SELECT first, last FROM langbiang_coverage WHERE gateway = $1 AND epoch = $2 AND stream = $3 ORDER BY first',
        key,
      )
    ).rows.map((r) => [Number(r.first), Number(r.last)] as const);
    const next = nextWatermark({ upto: Number(row.upto), settled: Number(row.settled), above }, added, settled);
    if (!next.changed) return next.upto;
    await c.query(
      'UPDATE langbiang_watermarks SET upto = $4, settled = $5, updated_at = $6 WHERE gateway = $1 AND epoch = $2 AND stream = $3',
      [...key, next.upto, next.settled, now],
    );
    // In order (the usual case) nothing waits above the watermark before or after: no range to rewrite.
    if (above.length > 0)
      await c.query('DELETE FROM langbiang_coverage WHERE gateway = $1 AND epoch = $2 AND stream = $3', key);
    if (next.above.length > 0) {
      await c.query(
        `INSERT INTO langbiang_coverage (gateway, epoch, stream, first, last)
         SELECT $1, $2, $3, u.first, u.last FROM unnest($4::bigint[], $5::bigint[]) AS u(first, last)`,
        [...key, next.above.map((r) => r[0]), next.above.map((r) => r[1])],
      );
    }
    return next.upto;
  }

  private dayPartitions(): DayPartitions {
    if (!this.pool) throw new LangbiangError('STORE_FAILED', 'the receiver database is closed');
    this.partitions ??= new DayPartitions(this.pool);
    return this.partitions;
  }

  /** Drops the daily partitions wholly older than `before` (wall ms); returns the days dropped. */
  async dropDaysBefore(before: number): Promise<string[]> {
    return this.dayPartitions().dropBefore(before);
  }

  async watermarks(gateway: string, epoch: string): Promise<Watermarks> {
    const rows = await this.query<{ stream: string; upto: string }>(
      'SELECT stream, upto FROM langbiang_watermarks WHERE gateway = $1 AND epoch = $2',
      [gateway, epoch],
    );
    const get = (s: Stream) => Number(rows.find((r) => r.stream === s)?.upto ?? 0);
    return { seq: get('readings'), events: get('events') };
  }

  async *readings(q: ReadingQuery = {}): AsyncIterable<ReceivedReading[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      args.push(v);
      where.push(sql.replace('?', `$${args.length}`));
    };
    if (q.gateway !== undefined) add('gateway = ?', q.gateway);
    if (q.device !== undefined) add('device = ?', q.device);
    if (q.point !== undefined) add('point = ?', q.point);
    if (q.from !== undefined) add('ts >= ?', q.from);
    if (q.to !== undefined) add('ts <= ?', q.to);
    const pageSize = q.pageSize ?? 5000;
    const k = args.length;
    const sql = `SELECT gateway, epoch, seq, device, point, ts, value_num, value_text, unit, quality FROM langbiang_readings
      WHERE ${where.length ? `${where.join(' AND ')} AND ` : ''}(gateway, epoch, seq) > ($${k + 1}, $${k + 2}, $${k + 3})
      ORDER BY gateway, epoch, seq LIMIT $${k + 4}`;
    let after: [string, string, number] = ['', '', -1];
    for (;;) {
      const rows = (await this.query<PgReading>(sql, [...args, ...after, pageSize])).map(toReading);
      if (rows.length === 0) return;
      yield rows;
      const last = rows[rows.length - 1]!;
      after = [last.gateway, last.epoch, last.seq];
      if (rows.length < pageSize) return;
    }
  }

  async events(q: EventQuery = {}): Promise<ReceivedEvent[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.gateway !== undefined) {
      args.push(q.gateway);
      where.push(`gateway = $${args.length}`);
    }
    if (q.kind !== undefined) {
      args.push(q.kind);
      where.push(`kind = $${args.length}`);
    }
    const rows = await this.query<{
      gateway: string;
      epoch: string;
      id: string;
      kind: string;
      ts: string;
      data: Record<string, unknown>;
    }>(
      `SELECT gateway, epoch, id, kind, ts, data FROM langbiang_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY gateway, epoch, id`,
      args,
    );
    return rows.map((r) => ({ ...r, id: Number(r.id), ts: Number(r.ts) }));
  }

  async counts(): Promise<{ readings: number; events: number }> {
    const [r] = await this.query<{ readings: string; events: string }>(
      'SELECT (SELECT count(*) FROM langbiang_readings) AS readings, (SELECT count(*) FROM langbiang_events) AS events',
    );
    return { readings: Number(r!.readings), events: Number(r!.events) };
  }

  async putStatus(st: StatusMessage, receivedAt: number): Promise<void> {
    await this.query(
      `INSERT INTO langbiang_gateway_status (gateway, state, status_ts, received_at, status) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (gateway) DO UPDATE SET state = EXCLUDED.state, status_ts = EXCLUDED.status_ts,
         received_at = EXCLUDED.received_at, status = EXCLUDED.status`,
      [st.gateway, st.state, st.ts, receivedAt, JSON.stringify(st)],
    );
  }

  async statuses(): Promise<StoredStatus[]> {
    const rows = await this.query<{ gateway: string; received_at: string; status: StoredStatus['status'] }>(
      'SELECT gateway, received_at, status FROM langbiang_gateway_status ORDER BY gateway',
    );
    return rows.map((r) => ({ gateway: r.gateway, receivedAt: Number(r.received_at), status: r.status }));
  }

  async activity(since: number, until = Number.MAX_SAFE_INTEGER): Promise<GatewayActivity[]> {
    const rows = await this.query<{ gateway: string; readings: string; last_ts: string; last_received: string }>(
      `SELECT gateway, count(*) AS readings, max(ts) AS last_ts, max(received_at) AS last_received
       FROM langbiang_readings WHERE ts >= $1 AND ts <= $2 GROUP BY gateway ORDER BY gateway`,
      [since, until],
    );
    return rows.map((r) => ({
      gateway: r.gateway,
      readings: Number(r.readings),
      lastReadingTs: Number(r.last_ts),
      lastReceivedAt: Number(r.last_received),
    }));
  }

  async allWatermarks(): Promise<WatermarkRow[]> {
    const rows = await this.query<{ gateway: string; epoch: string; stream: Stream; upto: string; updated_at: string }>(
      'SELECT gateway, epoch, stream, upto, updated_at FROM langbiang_watermarks ORDER BY gateway, epoch, stream',
    );
    return rows.map((r) => ({
      gateway: r.gateway,
      epoch: r.epoch,
      stream: r.stream,
      upto: Number(r.upto),
      updatedAt: Number(r.updated_at),
    }));
  }

  async readingSpan(): Promise<ReadingSpan | null> {
    const [r] = await this.query<{ first: string | null; last: string | null }>(
      'SELECT min(ts) AS first, max(ts) AS last FROM langbiang_readings',
    );
    return r?.first == null || r.last == null ? null : { first: Number(r.first), last: Number(r.last) };
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  private async query<T>(sql: string, args: unknown[] = []): Promise<T[]> {
    if (!this.pool) throw new LangbiangError('STORE_FAILED', 'the receiver database is closed');
    try {
      return (await this.pool.query(sql, args)).rows as T[];
    } catch (err) {
      throw new LangbiangError('STORE_FAILED', `receiver database query failed: ${describeError(err)}`, undefined, {
        cause: err,
      });
    }
  }

  async close(): Promise<void> {
    const p = this.pool;
    this.pool = undefined;
    await p?.end().catch(() => {});
  }
}

interface PgReading {
  gateway: string;
  epoch: string;
  // bigint columns arrive as strings (they may exceed 2^53 in general; ours never do)
  seq: string;
  device: string;
  point: string;
  ts: string;
  value_num: number | null;
  value_text: string | null;
  unit: string | null;
  quality: string;
}

function toReading(r: PgReading): ReceivedReading {
  return {
    gateway: r.gateway,
    epoch: r.epoch,
    seq: Number(r.seq),
    device: r.device,
    point: r.point,
    ts: Number(r.ts),
    value: r.value_num ?? r.value_text ?? null,
    unit: r.unit,
    quality: r.quality as Quality,
  };
}

function tooNew(location: string, found: number): LangbiangError {
  return new LangbiangError(
    'STORE_SCHEMA_TOO_NEW',
    `${location} has receiver schema version ${found}; this release knows up to ${RECEIVER_SCHEMA_VERSION}: upgrade langbiang`,
  );
}
