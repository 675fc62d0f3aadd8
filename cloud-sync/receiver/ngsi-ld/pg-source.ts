import type { Pool } from 'pg';
import { describeError, LangbiangError } from '../../../gateway/core/errors.js';
import { redactUrl } from '../store.js';
import type { PointValue } from './entities.js';
import { type Arrival, type ArrivalKey, type NgsiLdSource, storedValue } from './source.js';

/** The NGSI-LD output's queries on the receiver's PostgreSQL tables (its own small pool). */
export class PgNgsiLdSource implements NgsiLdSource {
  private pool: Pool | undefined;
  private readonly location: string;

  constructor(private readonly url: string) {
    this.location = redactUrl(url);
  }

  async init(): Promise<void> {
    const pg = await import('pg');
    const PoolCtor = (pg.default?.Pool ?? pg.Pool) as typeof Pool;
    this.pool = new PoolCtor({ connectionString: this.url, max: 2, connectionTimeoutMillis: 10_000 });
    this.pool.on('error', () => {});
    const [r] = await this.query<{ t: string | null }>("SELECT to_regclass('langbiang_readings')::text AS t");
    if (!r?.t) {
      throw new LangbiangError(
        'STORE_FAILED',
        `NGSI-LD output: ${this.location} has no langbiang_readings table (is it a receiver database?)`,
      );
    }
    await this.query(
      `CREATE TABLE IF NOT EXISTS langbiang_ngsi_ld_cursor (
         name text PRIMARY KEY, received_at bigint NOT NULL, gateway text NOT NULL, epoch text NOT NULL, seq bigint NOT NULL)`,
    );
    try {
      await this.query(
        'CREATE INDEX IF NOT EXISTS langbiang_ngsi_ld_readings_arrival ON langbiang_readings (received_at, gateway, epoch, seq)',
      );
    } catch (err) {
      // two receivers starting together: one of them made it; a real failure shows on the next query
      if (!/already exists/.test(describeError(err))) throw err;
    }
  }

  private async query<T>(sql: string, args: unknown[] = []): Promise<T[]> {
    if (!this.pool) throw new LangbiangError('STORE_FAILED', 'the receiver database is closed');
    try {
      return (await this.pool.query(sql, args)).rows as T[];
    } catch (err) {
      throw new LangbiangError('STORE_FAILED', `NGSI-LD output: query failed: ${describeError(err)}`, undefined, {
        cause: err,
      });
    }
  }

  async cursor(name: string): Promise<ArrivalKey | undefined> {
    const [r] = await this.query<{ received_at: string; gateway: string; epoch: string; seq: string }>(
      'SELECT received_at, gateway, epoch, seq FROM langbiang_ngsi_ld_cursor WHERE name = $1',
      [name],
    );
    return r && { receivedAt: Number(r.received_at), gateway: r.gateway, epoch: r.epoch, seq: Number(r.seq) };
  }

  async saveCursor(name: string, k: ArrivalKey): Promise<void> {
    await this.query(
      `INSERT INTO langbiang_ngsi_ld_cursor (name, received_at, gateway, epoch, seq) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (name) DO UPDATE SET received_at = EXCLUDED.received_at, gateway = EXCLUDED.gateway,
         epoch = EXCLUDED.epoch, seq = EXCLUDED.seq`,
      [name, k.receivedAt, k.gateway, k.epoch, k.seq],
    );
  }

  async arrivals(after: ArrivalKey, until: number, limit: number): Promise<Arrival[]> {
    const rows = await this.query<{
      received_at: string;
      gateway: string;
      epoch: string;
      seq: string;
      device: string;
      point: string;
    }>(
      `SELECT received_at, gateway, epoch, seq, device, point FROM langbiang_readings
       WHERE (received_at, gateway, epoch, seq) > ($1, $2, $3, $4) AND received_at <= $5
       ORDER BY received_at, gateway, epoch, seq LIMIT $6`,
      [after.receivedAt, after.gateway, after.epoch, after.seq, until, limit],
    );
    return rows.map((r) => ({
      receivedAt: Number(r.received_at),
      gateway: r.gateway,
      epoch: r.epoch,
      seq: Number(r.seq),
      device: r.device,
      point: r.point,
    }));
  }

  async latest(gateway: string, device: string, points: readonly string[]): Promise<PointValue[]> {
    if (points.length === 0) return [];
    const rows = await this.query<{
      point: string;
      ts: string;
      value_num: number | null;
      value_text: string | null;
      unit: string | null;
    }>(
      `SELECT p.point, r.ts, r.value_num, r.value_text, r.unit FROM unnest($3::text[]) AS p(point)
       CROSS JOIN LATERAL (
         SELECT ts, value_num, value_text, unit FROM langbiang_readings
         WHERE device = $2 AND gateway = $1 AND point = p.point AND quality = 'good'
         ORDER BY ts DESC, seq DESC LIMIT 1) r`,
      [gateway, device, [...points]],
    );
    return rows.map((r) => ({
      point: r.point,
      ts: Number(r.ts),
      value: storedValue(r.value_num, r.value_text),
      unit: r.unit,
    }));
  }

  async close(): Promise<void> {
    const p = this.pool;
    this.pool = undefined;
    await p?.end().catch(() => {});
  }
}
