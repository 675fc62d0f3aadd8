import type Database from 'better-sqlite3';
import { describeError, LangbiangError } from '../core/errors.js';
import type { GatewayEventKind, GatewayEventRecord } from '../core/outbox.js';
import type { GapEvent } from '../core/reading.js';
import { prepareStatements } from './statements.js';

/** Acknowledged events beyond this many newest are pruned; unacknowledged ones are always kept. */
const EVENTS_KEEP = 10_000;
const MAX_EVENT_DATA_BYTES = 64 * 1024;

interface GapRow {
  id: number;
  first_seq: number;
  last_seq: number;
  count: number;
  reason: GapEvent['reason'];
  ts: number;
}

/**
 * The `events` and `gaps` tables: what the sync agent publishes on `events` (gaps, command audit,
 * alarms), by an id that is never reused. Every gap is also an event, written in the same
 * transaction, so the city learns of each reading the gateway could not keep.
 */
export class EventLog {
  private readonly s;

  constructor(
    db: Database.Database,
    readonly: boolean,
    private readonly wallNow: () => number,
    /** newest event id the city confirmed: only events at or below it may be pruned */
    private readonly confirmedEventId: () => number,
  ) {
    this.s = prepareStatements(
      db,
      readonly,
      {
        maxGapSeq: 'SELECT max(last_seq) FROM gaps',
        countGaps: 'SELECT count(*) FROM gaps',
        overflowHoles:
          "SELECT sum(count) FROM gaps WHERE reason = 'ingest_overflow' AND first_seq > ? AND last_seq < ?",
        gapsAfter: 'SELECT id, first_seq, last_seq, count, reason, ts FROM gaps WHERE id > ? ORDER BY id',
        eventsAfter: 'SELECT id, kind, ts, data FROM events WHERE id > ? ORDER BY id LIMIT ?',
        maxEventId: "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
      },
      {
        insertGap: 'INSERT INTO gaps (first_seq, last_seq, count, reason, ts) VALUES (?, ?, ?, ?, ?)',
        insertEvent: 'INSERT INTO events (kind, ts, data) VALUES (?, ?, ?)',
        pruneEvents: 'DELETE FROM events WHERE id <= ?',
      },
    );
    // single-column reads return the value itself
    for (const single of [this.s.maxGapSeq, this.s.countGaps, this.s.overflowHoles, this.s.maxEventId]) single.pluck();
  }

  /** Records an event for the city now (its own small transaction: events are rare); returns its id. */
  record(kind: GatewayEventKind, data: Record<string, unknown>): number {
    let json: string | undefined;
    try {
      json = JSON.stringify(data ?? {});
    } catch (err) {
      throw new LangbiangError('STORE_FAILED', `event ${kind}: data is not JSON-serialisable (${describeError(err)})`);
    }
    if (json === undefined || !json.startsWith('{'))
      throw new LangbiangError('STORE_FAILED', `event ${kind}: data must be an object`);
    if (json.length > MAX_EVENT_DATA_BYTES)
      throw new LangbiangError('STORE_FAILED', `event ${kind}: data is larger than ${MAX_EVENT_DATA_BYTES} bytes`);
    const id = Number(this.s.insertEvent.run(kind, this.wallNow(), json).lastInsertRowid);
    if (id % 100 === 0) this.prune();
    return id;
  }

  after(afterId: number, limit: number): GatewayEventRecord[] {
    const rows = this.s.eventsAfter.all(afterId, limit) as {
      id: number;
      kind: GatewayEventKind;
      ts: number;
      data: string;
    }[];
    return rows.map((r) => {
      let data: Record<string, unknown>;
      try {
        data = JSON.parse(r.data) as Record<string, unknown>;
      } catch {
        data = { unreadable: r.data.slice(0, 200) };
      }
      return { id: r.id, kind: r.kind, ts: r.ts, data };
    });
  }

  /** Newest event id ever given (0 when none); ids are never reused, even after pruning. */
  lastId(): number {
    return (this.s.maxEventId.get() as number | null | undefined) ?? 0;
  }

  /** Records a gap and its `gap` event; call inside the write transaction that makes the gap. */
  recordGap(g: Omit<GapEvent, 'id'>): GapEvent {
    const row = this.s.insertGap.run(g.firstSeq, g.lastSeq, g.count, g.reason, g.ts);
    const gap: GapEvent = { id: Number(row.lastInsertRowid), ...g };
    const data = { gapId: gap.id, firstSeq: gap.firstSeq, lastSeq: gap.lastSeq, count: gap.count, reason: gap.reason };
    this.s.insertEvent.run('gap', gap.ts, JSON.stringify(data));
    return gap;
  }

  gapsAfter(afterId: number): GapEvent[] {
    return (this.s.gapsAfter.all(afterId) as GapRow[]).map((r) => ({
      id: r.id,
      firstSeq: r.first_seq,
      lastSeq: r.last_seq,
      count: r.count,
      reason: r.reason,
      ts: r.ts,
    }));
  }

  gapCount(): number {
    return this.s.countGaps.get() as number;
  }

  /** Highest seq a gap names (0 when none): seqs a gap reserved are never given again. */
  maxGapSeq(): number {
    return (this.s.maxGapSeq.get() as number | null) ?? 0;
  }

  /** Seqs reserved by ingest_overflow gaps strictly between first and last: they never held a reading. */
  overflowHolesBetween(first: number, last: number): number {
    return (this.s.overflowHoles.get(first, last) as number | null) ?? 0;
  }

  private prune(): void {
    this.s.pruneEvents.run(Math.min(this.confirmedEventId(), this.lastId() - EVENTS_KEEP));
  }
}
