/** UTC calendar days, the unit of the archive and of open data. */

export function isDay(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const t = Date.parse(`${s}T00:00:00Z`);
  return Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === s;
}

/** The day's first and last millisecond (inclusive), UTC. */
export function dayBounds(day: string): { from: number; to: number } {
  const from = Date.parse(`${day}T00:00:00Z`);
  return { from, to: from + 86_400_000 - 1 };
}

export function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
