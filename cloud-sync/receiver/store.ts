import { LangbiangError } from '../../gateway/core/errors.js';
import type { StatusMessage } from '../protocol/status.js';
import type { EventsBatch, TelemetryBatch, WireEvent, WireReading } from '../protocol/types.js';
import type { Watermarks } from './watermark.js';

/** One reading as the receiver holds it: the wire reading plus who sent it. */
export interface ReceivedReading extends WireReading {
  gateway: string;
  epoch: string;
}

/** One event as the receiver holds it: the wire event plus who sent it. */
export interface ReceivedEvent extends WireEvent {
  gateway: string;
  epoch: string;
}

export interface WriteResult {
  inserted: number;
  /** rows already held (a redelivery or a replay after a gateway crash) */
  duplicates: number;
  /**
   * The (gateway, epoch)'s watermarks after this write, computed in its transaction: what the
   * receiver acknowledges end to end (protocol/ack.ts).
   */
  watermarks: Watermarks;
  /** the batch was committed whole, its rows written later (SQLite: sqlite-landing.ts) */
  landed?: boolean;
}

export interface ReadingQuery {
  gateway?: string;
  device?: string;
  point?: string;
  /** wall ms, inclusive */
  from?: number;
  /** wall ms, inclusive */
  to?: number;
  /** rows per page (default 5000) */
  pageSize?: number;
}

export interface EventQuery {
  gateway?: string;
  kind?: string;
}

/** The latest retained `status` a gateway left on the broker, as the receiver keeps it. */
export interface StoredStatus {
  gateway: string;
  status: StatusMessage;
  /** wall ms when the receiver got it */
  receivedAt: number;
}

/** What the readings table says about one gateway since a time (the fleet view). */
export interface GatewayActivity {
  gateway: string;
  /** readings with a reading time at or after `since` */
  readings: number;
  /** newest reading time (wall ms, the gateway's clock) */
  lastReadingTs: number;
  /** when the receiver last stored a reading of it (wall ms, the receiver's clock) */
  lastReceivedAt: number;
}

/** One row of the end-to-end acknowledgement watermarks (watermark.ts). */
export interface WatermarkRow {
  gateway: string;
  epoch: string;
  stream: 'readings' | 'events';
  upto: number;
  updatedAt: number;
}

/** A day's span of reading times (wall ms), or null when there is no reading. */
export interface ReadingSpan {
  first: number;
  last: number;
}

/**
 * Where the receiver keeps what it got. Every write is idempotent on (gateway, epoch, seq) for
 * readings and (gateway, epoch, id) for events, and runs in one transaction: when a write
 * resolves it is committed, and only then is the MQTT message acknowledged.
 */
export interface ReceiverStore {
  readonly backend: 'sqlite' | 'postgres';
  /** where it is, without credentials (for logs) */
  readonly location: string;
  /** create or upgrade the schema; refuses a database written by a newer release */
  init(): Promise<void>;
  /**
   * `payload`: the message's bytes as they came (native encoding), which a backend may keep as is
   * (SQLite lands a backlog's large batches whole: sqlite-landing.ts).
   */
  writeTelemetry(batch: TelemetryBatch, receivedAt: number, payload?: Uint8Array): Promise<WriteResult>;
  writeEvents(batch: EventsBatch, receivedAt: number): Promise<WriteResult>;
  /** readings ordered by gateway, epoch, seq, a page at a time (keyset pagination: no long transaction) */
  readings(q?: ReadingQuery): AsyncIterable<ReceivedReading[]>;
  events(q?: EventQuery): Promise<ReceivedEvent[]>;
  counts(): Promise<{ readings: number; events: number }>;
  /** the watermarks of one (gateway, epoch); zeros when the database has none */
  watermarks(gateway: string, epoch: string): Promise<Watermarks>;
  /** keeps a gateway's latest status (the last one delivered wins: that is the broker's retained one) */
  putStatus(status: StatusMessage, receivedAt: number): Promise<void>;
  statuses(): Promise<StoredStatus[]>;
  /**
   * Per gateway, over the readings timed at or after `since` (and at or before `until`; wall ms): how many, the newest, when
   * last received. Bounded by time so that it reads recent days only (index, partitions), never
   * the whole history.
   */
  activity(since: number, until?: number): Promise<GatewayActivity[]>;
  allWatermarks(): Promise<WatermarkRow[]>;
  /** the oldest and newest reading time, for the archive's closed days */
  readingSpan(): Promise<ReadingSpan | null>;
  /**
   * Retention: removes the readings of every UTC day that ends at or before `before` (wall ms).
   * PostgreSQL drops the day's partition; SQLite deletes the rows. Returns the days removed.
   */
  dropDaysBefore(before: number): Promise<string[]>;
  /** resolves when the database answers */
  ping(): Promise<void>;
  /** readings committed but not yet rows (SQLite's landed batches); absent where every write is rows */
  landedReadings?(): number;
  close(): Promise<void>;
}

/** Schema version of the PostgreSQL receiver's tables (the SQLite file counts its own: sqlite-store.ts). */
export const RECEIVER_SCHEMA_VERSION = 3;

export type StoreLocation = { backend: 'sqlite'; path: string } | { backend: 'postgres'; url: string };

/**
 * `postgres://…` / `postgresql://…` → PostgreSQL; `sqlite:///abs/path`, `sqlite:rel/path` or a
 * plain file path → SQLite. Any other scheme is refused rather than taken for a file name.
 */
export function parseStoreUrl(url: string): StoreLocation {
  const u = url.trim();
  if (!u) throw new LangbiangError('USAGE', 'the receiver database URL is empty');
  if (/^postgres(ql)?:\/\//i.test(u)) return { backend: 'postgres', url: u };
  const sqlite = /^sqlite:(\/\/)?(.*)$/i.exec(u);
  if (sqlite) {
    const path = sqlite[2]!;
    if (!path)
      throw new LangbiangError('USAGE', `${JSON.stringify(url)} names no file (use sqlite:///path/to/receiver.db)`);
    return { backend: 'sqlite', path };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(u)) {
    const scheme = u.slice(0, u.indexOf(':'));
    throw new LangbiangError(
      'USAGE',
      `unsupported receiver database ${scheme}://… (use a file path, sqlite:///path or postgres://user@host/db)`,
    );
  }
  return { backend: 'sqlite', path: u };
}

/** A URL safe to log: the password, if any, replaced. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

/** Opens (and initialises) the store a URL names; the PostgreSQL driver is loaded only when used. */
export async function openReceiverStore(
  url: string,
  opts: {
    readonly?: boolean;
    /** a background job's failure (SQLite's expansion of landed batches) */
    onError?: (message: string) => void;
    /** SQLite: messages of more readings than this are committed whole (default 1,000; 0: every one) */
    landAbove?: number;
  } = {},
): Promise<ReceiverStore> {
  const loc = parseStoreUrl(url);
  const store =
    loc.backend === 'postgres'
      ? new (await import('./pg-store.js')).PgReceiverStore(loc.url, opts)
      : new (await import('./sqlite-store.js')).SqliteReceiverStore(loc.path, opts);
  try {
    await store.init();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}

/** Columns of one reading as stored: numbers and strings apart, so a number stays a number. */
export function splitValue(v: number | string | null): { num: number | null; text: string | null } {
  if (typeof v === 'number') return { num: v, text: null };
  if (typeof v === 'string') return { num: null, text: v };
  return { num: null, text: null };
}
