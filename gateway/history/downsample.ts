/** One bucket of a series: what min/max/avg charts need, and what can be merged. */
export interface Agg {
  min: number;
  max: number;
  sum: number;
  n: number;
}

export interface Downsampled {
  /** bucket width in ms */
  step: number;
  /** bucket start, wall ms */
  t: number[];
  min: number[];
  max: number[];
  avg: number[];
}

export function fold(a: Agg | undefined, v: number): Agg {
  if (!a) return { min: v, max: v, sum: v, n: 1 };
  if (v < a.min) a.min = v;
  if (v > a.max) a.max = v;
  a.sum += v;
  a.n++;
  return a;
}

export function merge(a: Agg | undefined, b: Agg): Agg {
  if (!a) return { ...b };
  a.min = Math.min(a.min, b.min);
  a.max = Math.max(a.max, b.max);
  a.sum += b.sum;
  a.n += b.n;
  return a;
}

/** Bucket width for a range: at most maxPoints buckets, a whole multiple of the source resolution. */
export function stepFor(from: number, to: number, maxPoints: number, resolution: number): number {
  const raw = Math.max(1, (to - from) / Math.max(1, maxPoints));
  return Math.max(resolution, Math.ceil(raw / resolution) * resolution);
}

/**
 * Merges samples (already aggregated or single values) into buckets of `step` ms aligned to the
 * epoch, so the same range asked twice gives the same buckets. Min and max survive downsampling:
 * a dry spell of ten minutes still shows in a 30-day chart.
 */
export function downsample(samples: Iterable<[number, Agg]>, step: number): Downsampled {
  const buckets = new Map<number, Agg>();
  for (const [t, a] of samples) {
    const b = Math.floor(t / step) * step;
    buckets.set(b, merge(buckets.get(b), a));
  }
  const keys = [...buckets.keys()].sort((x, y) => x - y);
  const out: Downsampled = { step, t: [], min: [], max: [], avg: [] };
  for (const k of keys) {
    const a = buckets.get(k)!;
    out.t.push(k);
    out.min.push(round(a.min));
    out.max.push(round(a.max));
    out.avg.push(round(a.sum / a.n));
  }
  return out;
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}
