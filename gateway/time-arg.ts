/**
 * A time as a technician types it, for the CLI (`export --from -24h`) and the HTTP API
 * (`/api/readings?from=-5m`) alike: "2026-11-26T10:00:00Z", "2026-11-26", "-24h", "-5m",
 * "1700000000000" → epoch ms.
 */
export function parseTimeArg(text: string, now = Date.now()): number {
  const rel = /^-(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (rel) {
    const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 'ms'];
    return now - Number(rel[1]) * mult;
  }
  if (/^\d{10,}$/.test(text.trim())) return Number(text.trim());
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new Error(`"${text}" is not a time (use ISO 8601 like 2026-11-26T08:00:00Z, or -24h)`);
  return t;
}
