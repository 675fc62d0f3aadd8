import type { EventsBatch, TelemetryBatch } from '../protocol/types.js';

/**
 * The receiver's side of the end-to-end acknowledgement (docs/protocol.md, "End-to-end
 * acknowledgement"). Per (gateway, epoch) and per stream — readings by seq, events by id — the
 * database keeps a watermark (every number at or below it is accounted for) and the ranges above
 * it that are accounted for already, waiting for the hole below them to close. Each message adds
 * the ranges it accounts for; the watermark then moves over every range that touches it.
 *
 * Receivers that share one database run this in the transaction that stores the message, with
 * the watermark row locked: whichever commits last sees every range the others committed, so the
 * result does not depend on the order in which they commit.
 */

/** An inclusive range of seqs or event ids. */
export type Range = readonly [first: number, last: number];

export type Stream = 'readings' | 'events';

/** What one message accounts for, per stream. */
export interface Coverage {
  readings: Range[];
  events: Range[];
  /**
   * The gateway's statement that every seq (event id) at or below this was confirmed to it
   * before: a starting point for a database that does not know the gateway's history.
   */
  settledReadings?: number;
  settledEvents?: number;
}

/** The two watermarks of one (gateway, epoch): what an ack carries. */
export interface Watermarks {
  seq: number;
  events: number;
}

/**
 * Moves a watermark over the ranges that reach it. Returns the new watermark and the ranges still
 * above it, merged (sorted, disjoint, not adjacent), which is what the database keeps.
 */
export function advanceWatermark(upto: number, ranges: readonly Range[]): { upto: number; above: Range[] } {
  const sorted = ranges.filter((r) => r[1] >= r[0] && r[1] > upto).sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [first, last] of sorted) {
    const prev = merged[merged.length - 1];
    if (prev && first <= prev[1] + 1) prev[1] = Math.max(prev[1], last);
    else merged.push([first, last]);
  }
  let w = upto;
  while (merged.length > 0 && merged[0]![0] <= w + 1) w = Math.max(w, merged.shift()![1]);
  return { upto: w, above: merged };
}

/** What a telemetry batch accounts for: its span (holes in it are gaps the gateway reported). */
export function telemetryCoverage(b: TelemetryBatch): Coverage {
  const c: Coverage = { readings: [[b.firstSeq, b.lastSeq]], events: [] };
  if (b.fromConfirmed && b.firstSeq > 1) c.settledReadings = b.firstSeq - 1;
  return c;
}

/**
 * What an events batch accounts for: its events (the whole span after `after`, which says that
 * missing ids do not exist), and the seqs of every gap event in it — a dropped reading is
 * accounted for once the city has the gap that names it.
 */
export function eventsCoverage(b: EventsBatch): Coverage {
  const c: Coverage = { readings: [], events: [] };
  if (b.events.length > 0) {
    let maxId = 0;
    for (const e of b.events) maxId = Math.max(maxId, e.id);
    if (b.after !== undefined) c.events.push([b.after + 1, maxId]);
    else for (const e of b.events) c.events.push([e.id, e.id]);
  }
  for (const e of b.events) {
    if (e.kind !== 'gap') continue;
    const { firstSeq, lastSeq } = e.data as { firstSeq?: unknown; lastSeq?: unknown };
    if (
      Number.isSafeInteger(firstSeq) &&
      Number.isSafeInteger(lastSeq) &&
      (firstSeq as number) >= 1 &&
      (lastSeq as number) >= (firstSeq as number)
    ) {
      c.readings.push([firstSeq as number, lastSeq as number]);
    }
  }
  if (b.confirmed !== undefined && b.confirmed > 0) c.settledEvents = b.confirmed;
  return c;
}

/**
 * One stream's step, as the stores run it: the stored watermark and ranges plus this message's
 * ranges and settled point → the new watermark, the ranges to keep, and whether anything changed.
 */
export function nextWatermark(
  stored: { upto: number; settled: number; above: readonly Range[] },
  added: readonly Range[],
  settled: number | undefined,
): { upto: number; settled: number; above: Range[]; changed: boolean } {
  const s = Math.max(stored.settled, settled ?? 0);
  const all = [...stored.above, ...added];
  if (s > 0) all.push([1, s]);
  const next = advanceWatermark(stored.upto, all);
  const changed =
    next.upto !== stored.upto ||
    s !== stored.settled ||
    next.above.length !== stored.above.length ||
    next.above.some((r, i) => r[0] !== stored.above[i]![0] || r[1] !== stored.above[i]![1]);
  return { upto: next.upto, settled: s, above: next.above, changed };
}

/**
 * How many of these readings (seqs increasing) the stored state does not account for yet: above
 * the watermark (and the settled point) and outside every range kept above it.
 */
export function countUnaccounted(
  readings: readonly { seq: number }[],
  stored: { upto: number; settled: number; above: readonly Range[] },
): number {
  const floor = Math.max(stored.upto, stored.settled);
  let n = 0;
  let k = 0;
  for (const { seq } of readings) {
    if (seq <= floor) continue;
    while (k < stored.above.length && stored.above[k]![1] < seq) k++;
    const r = stored.above[k];
    if (!r || seq < r[0]) n++;
  }
  return n;
}
