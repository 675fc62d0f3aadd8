import { FLAG_UNSYNCED, isUnsynced } from './batch-codec.js';
import type { BatchTable } from './batch-table.js';
import type { PendingReading } from './pending.js';
import type { BootRow } from './series-dictionary.js';

/** The new wall time of a reading stamped before the clock was synchronised. */
export type Restamp = (reading: { ts: number; mono: number }) => number;

/**
 * Pis have no RTC: readings taken before NTP synchronised carry a wrong wall time and the
 * unsynced flag. Once the clock is known they are re-stamped (by the step, or from their
 * monotonic time), never by "now". These two functions do it to the readings of one boot, still
 * buffered and already committed; the store runs the second inside a write transaction.
 */
export function restampBuffered(
  buffer: PendingReading[],
  bootId: string,
  markSynced: boolean,
  restamp: Restamp,
): number {
  let count = 0;
  for (const p of buffer) {
    if (!p.synced && p.bootId === bootId) {
      p.ts = restamp(p);
      if (markSynced) p.synced = true;
      count++;
    }
  }
  return count;
}

/** Re-stamps the committed unsynced readings of one boot (rewriting their batches); returns how many. */
export function restampCommitted(batches: BatchTable, boot: BootRow, markSynced: boolean, restamp: Restamp): number {
  const t = { ts: 0, mono: 0 };
  return batches.rewrite(boot.firstSeq, (row) => {
    if (row.boot !== boot.id || !isUnsynced(row)) return false;
    t.ts = row.ts;
    t.mono = row.mono;
    row.ts = restamp(t);
    if (markSynced) row.flags &= ~FLAG_UNSYNCED;
    return true;
  });
}
