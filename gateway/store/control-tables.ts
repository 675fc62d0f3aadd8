import type Database from 'better-sqlite3';
import type { CommandResult } from '../core/command.js';

/**
 * Side tables of the control path, in the store's database file: the results of commands by id
 * (so a command delivered twice runs once, across restarts) and small named settings (a cabinet's
 * schedule replaced by the city, a manual override and its expiry).
 *
 * They are created with IF NOT EXISTS rather than as a numbered migration: they hold no readings,
 * nothing in the sync path depends on them, and an older release opening the file ignores them.
 * Writes are rare (one per command), so each is its own small transaction.
 */
export interface StoredCommandResult {
  result: CommandResult;
  /** what the command asked (device, point, value), hashed: the same id with other content is a conflict */
  fingerprint?: string;
}

export class ControlTables {
  private readonly stmts;
  private inserts = 0;

  constructor(db: Database.Database) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS command_results (
        id TEXT PRIMARY KEY,
        ts INTEGER NOT NULL,
        result TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS control_settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        ts INTEGER NOT NULL
      ) WITHOUT ROWID;
    `);
    this.stmts = {
      getResult: db.prepare('SELECT result FROM command_results WHERE id = ?').pluck(),
      putResult: db.prepare('INSERT OR IGNORE INTO command_results (id, ts, result) VALUES (?, ?, ?)'),
      pruneResults: db.prepare('DELETE FROM command_results WHERE ts < ?'),
      countResults: db.prepare('SELECT count(*) FROM command_results').pluck(),
      getSetting: db.prepare('SELECT value FROM control_settings WHERE key = ?').pluck(),
      putSetting: db.prepare('INSERT OR REPLACE INTO control_settings (key, value, ts) VALUES (?, ?, ?)'),
      deleteSetting: db.prepare('DELETE FROM control_settings WHERE key = ?'),
    };
  }

  /**
   * The stored result under a command key (the router's `source:id`), with the fingerprint of the
   * command it answered; undefined when the key is new.
   */
  commandResult(key: string): StoredCommandResult | undefined {
    const text = this.stmts.getResult.get(key) as string | undefined;
    if (text === undefined) return undefined;
    const { fingerprint, ...result } = JSON.parse(text) as CommandResult & { fingerprint?: string };
    return { result, ...(fingerprint !== undefined ? { fingerprint } : {}) };
  }

  /**
   * Remembers a command's result. The first result of a key wins (a racing duplicate never
   * overwrites it). Results older than keepMs are pruned now and then, so the table stays small.
   */
  recordCommandResult(key: string, entry: StoredCommandResult, keepMs: number): void {
    const { result, fingerprint } = entry;
    this.stmts.putResult.run(key, result.ts, JSON.stringify({ ...result, fingerprint }));
    if (++this.inserts % 100 === 1) this.stmts.pruneResults.run(result.ts - keepMs);
  }

  commandResultCount(): number {
    return this.stmts.countResults.get() as number;
  }

  setting<T>(key: string): T | undefined {
    const text = this.stmts.getSetting.get(key) as string | undefined;
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  setSetting(key: string, value: unknown, ts: number): void {
    this.stmts.putSetting.run(key, JSON.stringify(value), ts);
  }

  deleteSetting(key: string): void {
    this.stmts.deleteSetting.run(key);
  }
}
