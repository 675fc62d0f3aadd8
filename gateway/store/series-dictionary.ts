import type Database from 'better-sqlite3';
import { prepareStatements } from './statements.js';

/** What one series id stands for. */
export interface SeriesInfo {
  device: string;
  point: string;
  unit: string;
}

/** A boot's row in `boots`: its id in packed rows and the first seq stored under it. */
export interface BootRow {
  id: number;
  firstSeq: number;
}

/**
 * The `series` and `boots` tables, cached: packed rows carry small ids, and every reading of every
 * commit needs its (device, point, unit) turned into one. Rows are only ever added; a reader that
 * meets an id it does not know (another connection added it) reloads.
 */
export class SeriesDictionary {
  private readonly seriesIds = new Map<string, number>();
  /** device → point → unit → series id: a cache in front of seriesIds for the ingest path */
  private readonly seriesCache = new Map<string, Map<string, Map<string, number>>>();
  private readonly seriesById = new Map<number, SeriesInfo>();
  private readonly bootIds = new Map<string, BootRow>();
  private readonly bootById = new Map<number, string>();
  private readonly s;

  constructor(db: Database.Database, readonly: boolean) {
    this.s = prepareStatements(
      db,
      readonly,
      {
        allSeries: 'SELECT id, device, point, unit FROM series',
        allBoots: 'SELECT id, boot_id, first_seq FROM boots',
        findBoot: 'SELECT id, first_seq FROM boots WHERE boot_id = ?',
        findSeries: 'SELECT id FROM series WHERE device = ? AND point = ? AND unit = ?',
      },
      {
        insertSeries: 'INSERT INTO series (device, point, unit) VALUES (?, ?, ?)',
        insertBoot: 'INSERT INTO boots (boot_id, first_seq) VALUES (?, ?)',
      },
    );
    this.s.findSeries.pluck(); // a single-column read returns the value itself
    this.load();
  }

  /** Reads the rows added since the last load (by this or another connection). */
  load(): void {
    for (const r of this.s.allSeries.all() as { id: number; device: string; point: string; unit: string }[]) {
      if (this.seriesById.has(r.id)) continue;
      this.seriesById.set(r.id, { device: r.device, point: r.point, unit: r.unit });
      this.seriesIds.set(seriesKey(r.device, r.point, r.unit), r.id);
    }
    for (const r of this.s.allBoots.all() as { id: number; boot_id: string; first_seq: number }[]) {
      if (this.bootById.has(r.id)) continue;
      this.bootById.set(r.id, r.boot_id);
      this.bootIds.set(r.boot_id, { id: r.id, firstSeq: r.first_seq });
    }
  }

  /** Number of series known. */
  get seriesCount(): number {
    return this.seriesById.size;
  }

  /** What a series id stands for (reloading once when it is new to this connection). */
  series(id: number): SeriesInfo | undefined {
    let s = this.seriesById.get(id);
    if (!s) {
      this.load();
      s = this.seriesById.get(id);
    }
    return s;
  }

  /** The boot id string of a boot row (reloading once when it is new to this connection). */
  bootIdOf(row: number): string | undefined {
    let b = this.bootById.get(row);
    if (b === undefined) {
      this.load();
      b = this.bootById.get(row);
    }
    return b;
  }

  /** A boot's row, or undefined when no reading of that boot was ever stored. */
  boot(bootId: string): BootRow | undefined {
    const known = this.bootIds.get(bootId);
    if (known) return known;
    const found = this.s.findBoot.get(bootId) as { id: number; first_seq: number } | undefined;
    if (!found) return undefined;
    const b = { id: found.id, firstSeq: found.first_seq };
    this.bootIds.set(bootId, b);
    this.bootById.set(b.id, bootId);
    return b;
  }

  /** Series ids whose device and point match (undefined matches anything). */
  matching(device: string | undefined, point: string | undefined): number[] {
    this.load();
    const ids: number[] = [];
    for (const [id, s] of this.seriesById)
      if ((device === undefined || s.device === device) && (point === undefined || s.point === point)) ids.push(id);
    return ids;
  }

  /**
   * The series id of (device, point, unit), inserting a row when it is new; new keys are pushed to
   * `added` so that a rolled-back commit can forget them. Call inside the commit's transaction.
   */
  seriesIdFor(device: string, point: string, unit: string, added: string[]): number {
    // Hot path (every reading of every commit): nested maps on the strings a poll hands over find
    // the id without building a key string; seriesIds stays the authority behind this cache.
    let byPoint = this.seriesCache.get(device);
    if (!byPoint) {
      byPoint = new Map();
      this.seriesCache.set(device, byPoint);
    }
    let byUnit = byPoint.get(point);
    if (!byUnit) {
      byUnit = new Map();
      byPoint.set(point, byUnit);
    }
    const cached = byUnit.get(unit);
    if (cached !== undefined) return cached;
    const key = seriesKey(device, point, unit);
    let id = this.seriesIds.get(key);
    if (id === undefined) {
      const found = this.s.findSeries.get(device, point, unit) as number | undefined;
      id = found ?? Number(this.s.insertSeries.run(device, point, unit).lastInsertRowid);
      this.seriesIds.set(key, id);
      this.seriesById.set(id, { device, point, unit });
      added.push(key);
    }
    byUnit.set(unit, id);
    return id;
  }

  /** The boot row of bootId, inserting one that starts at seq when it is new (as seriesIdFor). */
  bootRowFor(bootId: string, seq: number, added: string[]): number {
    let b = this.bootIds.get(bootId);
    if (!b) {
      const found = this.s.findBoot.get(bootId) as { id: number; first_seq: number } | undefined;
      b = found
        ? { id: found.id, firstSeq: found.first_seq }
        : { id: Number(this.s.insertBoot.run(bootId, seq).lastInsertRowid), firstSeq: seq };
      this.bootIds.set(bootId, b);
      this.bootById.set(b.id, bootId);
      added.push(bootId);
    }
    return b.id;
  }

  /** The commit that added these rows rolled back: forget them. */
  forget(addedSeries: readonly string[], addedBoots: readonly string[]): void {
    if (addedSeries.length > 0) this.seriesCache.clear();
    for (const key of addedSeries) {
      const id = this.seriesIds.get(key);
      this.seriesIds.delete(key);
      if (id !== undefined) this.seriesById.delete(id);
    }
    for (const bootId of addedBoots) {
      const b = this.bootIds.get(bootId);
      this.bootIds.delete(bootId);
      if (b) this.bootById.delete(b.id);
    }
  }
}

function seriesKey(device: string, point: string, unit: string): string {
  return `${device}\u0000${point}\u0000${unit}`;
}
