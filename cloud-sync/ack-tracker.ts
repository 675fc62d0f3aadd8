/**
 * The durable cursor's rule: it only moves over a contiguous prefix of acknowledged seqs. PUBACKs
 * can arrive for batch k+1 before batch k (and live batches are acked while older backlog is still
 * out), so acks above the cursor are kept as disjoint ranges until the hole below them closes.
 */
export class AckTracker {
  /** sorted, disjoint, non-adjacent ranges [first, last], all above the cursor */
  private ranges: [number, number][] = [];

  constructor(private cursorSeq: number) {}

  get cursor(): number {
    return this.cursorSeq;
  }

  /** Marks first..last acknowledged; returns true when the cursor moved. */
  ack(first: number, last: number): boolean {
    if (last <= this.cursorSeq) return false;
    first = Math.max(first, this.cursorSeq + 1);
    const out: [number, number][] = [];
    let cur: [number, number] = [first, last];
    let placed = false;
    for (const r of this.ranges) {
      if (r[1] + 1 < cur[0]) {
        out.push(r);
      } else if (cur[1] + 1 < r[0]) {
        if (!placed) {
          out.push(cur);
          placed = true;
        }
        out.push(r);
      } else {
        cur = [Math.min(cur[0], r[0]), Math.max(cur[1], r[1])];
      }
    }
    if (!placed) out.push(cur);
    out.sort((a, b) => a[0] - b[0]);
    this.ranges = out;
    const before = this.cursorSeq;
    while (this.ranges.length && this.ranges[0]![0] === this.cursorSeq + 1) {
      this.cursorSeq = this.ranges.shift()![1];
    }
    return this.cursorSeq !== before;
  }

  /** The first seq >= from that is not acknowledged. */
  nextUnacked(from: number): number {
    let s = Math.max(from, this.cursorSeq + 1);
    for (const r of this.ranges) {
      if (r[1] < s) continue;
      if (r[0] > s) break;
      s = r[1] + 1;
    }
    return s;
  }

  /** Start of the first acknowledged range above `from`, or +Infinity: a batch must stop before it. */
  nextAckedAfter(from: number): number {
    for (const r of this.ranges) if (r[0] > from) return r[0];
    return Number.POSITIVE_INFINITY;
  }

  /** How many seqs above the cursor are acknowledged already. */
  ackedAhead(): number {
    let n = 0;
    for (const [a, b] of this.ranges) n += b - a + 1;
    return n;
  }

  rangesAbove(): readonly [number, number][] {
    return this.ranges;
  }
}
