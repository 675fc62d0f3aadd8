import type { Pool } from 'pg';
import { describeError, LangbiangError } from '../../gateway/core/errors.js';

const DAY = 86_400_000;
/** Serialises partition DDL between receivers sharing the database. */
const PARTITION_LOCK = 0x4c625250;

/** `langbiang_readings_p20261205`: the partition of one UTC day of reading time. */
export function partitionName(dayStart: number): string {
  return `langbiang_readings_p${new Date(dayStart).toISOString().slice(0, 10).replace(/-/g, '')}`;
}

/**
 * The daily partitions of `langbiang_readings` (PostgreSQL declarative partitioning by range of
 * ts). A write first makes sure its days have a partition — once per day and process, in a short
 * transaction of its own under an advisory lock, so receivers never race on the DDL and the data
 * transaction takes no DDL lock. A day whose rows already sit in the default partition (data from
 * before schema v3) keeps them there: its partition cannot be made, and the rows are still found.
 */
export class DayPartitions {
  private readonly known = new Set<number>();

  constructor(private readonly pool: Pool) {}

  async ensure(tss: readonly number[]): Promise<void> {
    const days = new Set<number>();
    for (const ts of tss) {
      const d = Math.floor(ts / DAY) * DAY;
      if (!this.known.has(d)) days.add(d);
    }
    for (const d of days) await this.create(d);
  }

  private async create(day: number): Promise<void> {
    const c = await this.pool.connect().catch((err: unknown) => {
      throw new LangbiangError('STORE_FAILED', `cannot connect to the receiver database: ${describeError(err)}`);
    });
    let broken = false;
    try {
      await c.query('BEGIN');
      await c.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK]);
      const name = partitionName(day);
      const exists = await c.query('SELECT to_regclass($1) AS t', [name]);
      if (exists.rows[0]?.t === null) {
        await c.query('SAVEPOINT p');
        try {
          await c.query(
            `CREATE TABLE ${name} PARTITION OF langbiang_readings FOR VALUES FROM (${day}) TO (${day + DAY})`,
          );
        } catch (err) {
          // 23514: rows of this day are in the default partition already (before v3): they stay there
          if ((err as { code?: string }).code !== '23514') throw err;
          await c.query('ROLLBACK TO SAVEPOINT p');
        }
      }
      await c.query('COMMIT');
      this.known.add(day);
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw new LangbiangError('STORE_FAILED', `receiver database partition failed: ${describeError(err)}`, undefined, {
        cause: err,
      });
    } finally {
      c.release(broken);
    }
  }

  /** Retention: drops every daily partition that ends at or before `before`. */
  async dropBefore(before: number): Promise<string[]> {
    const r = await this.pool.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'langbiang_readings' AND c.relname ~ '^langbiang_readings_p[0-9]{8}$'
       ORDER BY 1`,
    );
    const dropped = new Set<string>();
    const cutoff = Math.floor(before / DAY) * DAY;
    // rows from before schema v3 sit in the default partition: deleted, not dropped
    if ((await this.pool.query("SELECT to_regclass('langbiang_readings_before_v3') AS t")).rows[0]?.t) {
      const old = await this.pool.query<{ d: string }>(
        'DELETE FROM langbiang_readings_before_v3 WHERE ts < $1 RETURNING ts / 86400000 AS d',
        [cutoff],
      );
      for (const row of old.rows) dropped.add(new Date(Number(row.d) * DAY).toISOString().slice(0, 10));
    }
    for (const { name } of r.rows) {
      const m = /p(\d{4})(\d{2})(\d{2})$/.exec(name)!;
      const start = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
      if (start + DAY > cutoff) continue;
      await this.pool.query(`DROP TABLE ${name}`);
      this.known.delete(start);
      dropped.add(`${m[1]}-${m[2]}-${m[3]}`);
    }
    return [...dropped].sort();
  }
}
