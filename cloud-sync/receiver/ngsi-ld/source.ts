import { parseStoreUrl } from '../store.js';
import type { PointValue } from './entities.js';

/**
 * Where the NGSI-LD output has got to in the receiver's readings: arrival order, not seq order
 * (a gateway's backlog arrives after its live data). `(receivedAt, gateway, epoch, seq)` is unique
 * and only grows for new rows, except for rows still being committed: the output reads only rows
 * received some seconds ago (its lag) so a slow transaction is never skipped.
 */
export interface ArrivalKey {
  receivedAt: number;
  gateway: string;
  epoch: string;
  seq: number;
}

export const START: ArrivalKey = { receivedAt: -1, gateway: '', epoch: '', seq: -1 };

/** One reading's place in arrival order and whose value it is. */
export interface Arrival extends ArrivalKey {
  device: string;
  point: string;
}

/**
 * The few queries the NGSI-LD output needs on a receiver database, on its own connection: it
 * never goes through the receiver's write path, and the receiver's tables stay the truth. Its own
 * state is one cursor row per output (a table beside the receiver's).
 */
export interface NgsiLdSource {
  /** creates the cursor table and the arrival-order index if missing */
  init(): Promise<void>;
  cursor(name: string): Promise<ArrivalKey | undefined>;
  saveCursor(name: string, key: ArrivalKey): Promise<void>;
  /** readings after `after` received at or before `until` (wall ms), in arrival order, at most `limit` */
  arrivals(after: ArrivalKey, until: number, limit: number): Promise<Arrival[]>;
  /** the newest good reading of each of these points of a device (points without one are left out) */
  latest(gateway: string, device: string, points: readonly string[]): Promise<PointValue[]>;
  close(): Promise<void>;
}

/** Opens the source on the database a receiver URL names (`--db`); PostgreSQL's driver only when used. */
export async function openNgsiLdSource(url: string): Promise<NgsiLdSource> {
  const loc = parseStoreUrl(url);
  const source =
    loc.backend === 'postgres'
      ? new (await import('./pg-source.js')).PgNgsiLdSource(loc.url)
      : new (await import('./sqlite-source.js')).SqliteNgsiLdSource(loc.path);
  try {
    await source.init();
  } catch (err) {
    await source.close().catch(() => {});
    throw err;
  }
  return source;
}

/** Same value columns as the receiver stores: a number or a text. */
export function storedValue(num: number | null, text: string | null): number | string | null {
  return num ?? text ?? null;
}
