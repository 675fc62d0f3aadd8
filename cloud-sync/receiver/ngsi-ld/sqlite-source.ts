import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { describeError, LangbiangError } from '../../../gateway/core/errors.js';
import type { PointValue } from './entities.js';
import { type Arrival, type ArrivalKey, type NgsiLdSource, storedValue } from './source.js';

/** The NGSI-LD output's queries on the receiver's SQLite file (a second connection; WAL lets both work). */
export class SqliteNgsiLdSource implements NgsiLdSource {
  private db: Database.Database | undefined;
  private readonly file: string;

  constructor(path: string) {
    this.file = resolve(path);
  }

  async init(): Promise<void> {
    try {
      this.db = new Database(this.file, { fileMustExist: true });
      this.db.pragma('busy_timeout = 10000');
      const hasReadings = this.db
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'readings'")
        .get();
      if (!hasReadings) throw new Error('it has no readings table (is it a receiver database?)');
      this.db.exec(
        `CREATE TABLE IF NOT EXISTS ngsi_ld_cursor (
           name TEXT PRIMARY KEY,
           received_at INTEGER NOT NULL, gateway TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL
         );
         CREATE INDEX IF NOT EXISTS ngsi_ld_readings_arrival ON readings (received_at, gateway, epoch, seq);`,
      );
    } catch (err) {
      throw new LangbiangError(
        'STORE_FAILED',
        `NGSI-LD output: cannot use the receiver database ${this.file}: ${describeError(err)}`,
        undefined,
        { cause: err },
      );
    }
  }

  private must(): Database.Database {
    if (!this.db) throw new LangbiangError('STORE_FAILED', 'the receiver database is closed');
    return this.db;
  }

  async cursor(name: string): Promise<ArrivalKey | undefined> {
    const r = this.must()
      .prepare('SELECT received_at, gateway, epoch, seq FROM ngsi_ld_cursor WHERE name = ?')
      .get(name) as { received_at: number; gateway: string; epoch: string; seq: number } | undefined;
    return r && { receivedAt: r.received_at, gateway: r.gateway, epoch: r.epoch, seq: r.seq };
  }

  async saveCursor(name: string, k: ArrivalKey): Promise<void> {
    this.must()
      .prepare(
        `INSERT INTO ngsi_ld_cursor (name, received_at, gateway, epoch, seq) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET received_at = excluded.received_at, gateway = excluded.gateway,
           epoch = excluded.epoch, seq = excluded.seq`,
      )
      .run(name, k.receivedAt, k.gateway, k.epoch, k.seq);
  }

  async arrivals(after: ArrivalKey, until: number, limit: number): Promise<Arrival[]> {
    const rows = this.must()
      .prepare(
        `SELECT received_at, gateway, epoch, seq, device, point FROM readings
         WHERE (received_at, gateway, epoch, seq) > (?, ?, ?, ?) AND received_at <= ?
         ORDER BY received_at, gateway, epoch, seq LIMIT ?`,
      )
      .all(after.receivedAt, after.gateway, after.epoch, after.seq, until, limit) as {
      received_at: number;
      gateway: string;
      epoch: string;
      seq: number;
      device: string;
      point: string;
    }[];
    return rows.map((r) => ({
      receivedAt: r.received_at,
      gateway: r.gateway,
      epoch: r.epoch,
      seq: r.seq,
      device: r.device,
      point: r.point,
    }));
  }

  async latest(gateway: string, device: string, points: readonly string[]): Promise<PointValue[]> {
    const stmt = this.must().prepare(
      `SELECT ts, value_num, value_text, unit FROM readings
       WHERE device = ? AND gateway = ? AND point = ? AND quality = 'good'
       ORDER BY ts DESC, seq DESC LIMIT 1`,
    );
    const out: PointValue[] = [];
    for (const point of points) {
      const r = stmt.get(device, gateway, point) as
        | { ts: number; value_num: number | null; value_text: string | null; unit: string | null }
        | undefined;
      if (r) out.push({ point, ts: r.ts, value: storedValue(r.value_num, r.value_text), unit: r.unit });
    }
    return out;
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = undefined;
  }
}
