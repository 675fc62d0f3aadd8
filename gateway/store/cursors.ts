import type Database from 'better-sqlite3';

/** The cursor the sync agent advances on PUBACK; readings at or below it count as delivered. */
export const SYNC_CURSOR = 'sync';
/** The sync agent's cursor over the events table (event ids, not seqs). */
export const EVENTS_CURSOR = 'sync-events';
/**
 * Advanced by the city's end-to-end acknowledgement (or by PUBACK where the city sends none):
 * readings at or below it are stored at the city. Only these may be dropped without a gap event.
 */
export const CONFIRMED_CURSOR = 'sync-confirmed';
/** The same over event ids: only confirmed events are pruned. */
export const EVENTS_CONFIRMED_CURSOR = 'sync-events-confirmed';
/** meta key: the confirmed cursors exist (see adoptDeliveredAsConfirmed) */
const CONFIRM_CURSORS_META = 'confirmed_cursors';

/**
 * The `cursors` table, held in memory. A moved cursor is only marked dirty: it is written with the
 * store's next write transaction (writeDirty), not in one of its own, so moving a cursor on every
 * PUBACK costs no extra commit. A crash can at worst move it back a little.
 */
export class CursorTable {
  private readonly values = new Map<string, number>();
  private readonly dirty = new Set<string>();
  private readonly put: Database.Statement | null;

  constructor(
    private readonly db: Database.Database,
    readonly: boolean,
  ) {
    for (const row of db.prepare('SELECT name, seq FROM cursors').all() as { name: string; seq: number }[])
      this.values.set(row.name, row.seq);
    // Write statements cannot be prepared on a read-only connection.
    this.put = readonly
      ? null
      : db.prepare('INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq');
  }

  get(name: string): number | undefined {
    return this.values.get(name);
  }

  /** Moves a cursor in memory; returns false when it was already there (nothing to write). */
  move(name: string, seq: number): boolean {
    if (this.values.get(name) === seq) return false;
    this.values.set(name, seq);
    this.dirty.add(name);
    return true;
  }

  hasDirty(): boolean {
    return this.dirty.size > 0;
  }

  /** Writes the moved cursors; call inside the write transaction, then markWritten after it. */
  writeDirty(): void {
    for (const name of this.dirty) this.put!.run(name, this.values.get(name)!);
  }

  markWritten(): void {
    this.dirty.clear();
  }

  /**
   * Once per store, the first time a release with end-to-end acknowledgement opens it: what the
   * earlier release delivered counts as confirmed (the guarantee it had), and the first batch
   * sent from there tells the city so. A meta key marks it done (no schema version bump: an
   * earlier release can still open the store after a rollback).
   */
  adoptDeliveredAsConfirmed(): void {
    const getMeta = this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck();
    if (getMeta.get(CONFIRM_CURSORS_META) !== undefined) return;
    this.db
      .transaction(() => {
        for (const [delivered, confirmed] of [
          [SYNC_CURSOR, CONFIRMED_CURSOR],
          [EVENTS_CURSOR, EVENTS_CONFIRMED_CURSOR],
        ] as const) {
          const d = this.values.get(delivered);
          if (d !== undefined && !this.values.has(confirmed)) {
            this.values.set(confirmed, d);
            this.put!.run(confirmed, d);
          }
        }
        this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(CONFIRM_CURSORS_META, '1');
      })
      .immediate();
  }
}
