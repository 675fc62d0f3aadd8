import { describe, expect, it } from 'vitest';
import { AckTracker } from '../../cloud-sync/ack-tracker.js';
import { backoffDelay, TokenBucket } from '../../cloud-sync/pacing.js';

describe('AckTracker: the cursor moves over the longest acknowledged prefix only', () => {
  it('holds the cursor while batch k is out and k+1 is acked, then jumps over both', () => {
    const t = new AckTracker(100);
    expect(t.ack(201, 300)).toBe(false);
    expect(t.cursor).toBe(100);
    expect(t.ackedAhead()).toBe(100);
    expect(t.ack(101, 200)).toBe(true);
    expect(t.cursor).toBe(300);
    expect(t.ackedAhead()).toBe(0);
  });

  it('merges overlapping and adjacent ranges, in any order', () => {
    const t = new AckTracker(0);
    t.ack(50, 60);
    t.ack(20, 30);
    t.ack(31, 40);
    t.ack(55, 70);
    expect(t.rangesAbove()).toEqual([
      [20, 40],
      [50, 70],
    ]);
    expect(t.nextUnacked(1)).toBe(1);
    expect(t.nextUnacked(20)).toBe(41);
    expect(t.nextUnacked(45)).toBe(45);
    expect(t.nextUnacked(50)).toBe(71);
    expect(t.nextAckedAfter(1)).toBe(20);
    expect(t.nextAckedAfter(41)).toBe(50);
    expect(t.nextAckedAfter(71)).toBe(Number.POSITIVE_INFINITY);
    t.ack(1, 19);
    expect(t.cursor).toBe(40);
    t.ack(41, 49);
    expect(t.cursor).toBe(70);
  });

  it('ignores acks at or below the cursor', () => {
    const t = new AckTracker(10);
    expect(t.ack(1, 10)).toBe(false);
    expect(t.ack(5, 12)).toBe(true);
    expect(t.cursor).toBe(12);
  });

  it('random ack order always ends with the cursor at the top and never passes an unacked seq', () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 48271) % 2147483647;
      return seed / 2147483647;
    };
    for (let round = 0; round < 50; round++) {
      const batches: [number, number][] = [];
      let s = 1;
      while (s <= 500) {
        const len = 1 + Math.floor(rnd() * 30);
        batches.push([s, Math.min(500, s + len - 1)]);
        s += len;
      }
      for (let i = batches.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [batches[i], batches[j]] = [batches[j]!, batches[i]!];
      }
      const t = new AckTracker(0);
      const acked = new Set<number>();
      for (const [a, b] of batches) {
        t.ack(a, b);
        for (let k = a; k <= b; k++) acked.add(k);
        for (let k = 1; k <= t.cursor; k++) expect(acked.has(k)).toBe(true);
        expect(acked.has(t.cursor + 1)).toBe(false);
      }
      expect(t.cursor).toBe(500);
    }
  });
});

describe('TokenBucket and backoff', () => {
  it('paces by the configured rate and caps bursts at its capacity', () => {
    const b = new TokenBucket(100, 50, 0);
    expect(b.available(0)).toBe(50);
    b.take(50, 0);
    expect(b.available(0)).toBe(0);
    expect(b.waitFor(50, 0)).toBe(500);
    expect(b.available(250)).toBeCloseTo(25);
    expect(b.available(10_000)).toBe(50);
  });

  it('backs off exponentially with jitter, capped', () => {
    expect(backoffDelay(0, 1000, 60_000, () => 0)).toBe(500);
    expect(backoffDelay(0, 1000, 60_000, () => 1)).toBe(1000);
    expect(backoffDelay(3, 1000, 60_000, () => 1)).toBe(8000);
    expect(backoffDelay(20, 1000, 60_000, () => 1)).toBe(60_000);
    expect(backoffDelay(20, 1000, 60_000, () => 0)).toBe(30_000);
  });
});
