/**
 * The gateway bridge the runner puts in RED.settings.langbiang. Outside a Langbiang gateway (a
 * plain Node-RED) there is none: the nodes then show a red status instead of failing to load.
 */
function bridgeOf(RED) {
  try {
    return RED.settings.langbiang || null;
  } catch {
    return null;
  }
}

/** "a, b ,c" → ['a','b','c']; '' → [] */
function list(text) {
  return String(text ?? '')
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A number from a node property that may have been an ${ENV} placeholder. */
function num(value, fallback) {
  if (value === '' || value === undefined || value === null) return fallback;
  const n = Number(value);
  return Number.isFinite(n) ? n : fallback;
}

/** "90s", "15m", "2h", "1d", or a number of minutes → ms */
function durationMs(value, fallbackMs) {
  if (typeof value === 'number') return value * 60_000;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$/.exec(String(value ?? ''));
  if (!m) return fallbackMs;
  const n = Number(m[1]);
  const unit = m[2] ?? 'm';
  const mult = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 }[unit];
  return n * mult;
}

module.exports = { bridgeOf, list, num, durationMs };
