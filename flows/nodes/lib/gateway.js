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

/**
 * A number from a node property that may have been an ${ENV} placeholder. Empty means the
 * default; anything that is not a number throws naming the field (like a bad duration, it is never
 * replaced by the default).
 */
function num(label, value, defaultValue) {
  if (value === undefined || value === null || String(value).trim() === '') return defaultValue;
  const n = Number(typeof value === 'string' ? value.trim() : value);
  if (typeof value === 'boolean' || !Number.isFinite(n))
    throw new Error(`${label}: ${JSON.stringify(String(value).slice(0, 40))} is not a number`);
  return n;
}

let core = null;

/**
 * The gateway's one duration parser (gateway/core/duration.ts). The nodes ship beside the
 * compiled gateway (dist/), so they read durations exactly as the config and the CLI do.
 */
function durationParser() {
  core ??= import('../../../dist/gateway/core/duration.js');
  return core.then((m) => m.parseDuration);
}

/**
 * A node's duration field → ms, through that parser: "90s", "15m", "2h", "1h30m". A bare number
 * (10, or "10" typed in the editor or saved by an older version) counts in minutes, the unit the
 * fields have always documented. Empty means the field's default. Anything else throws an error
 * that names the field: the node shows it, it never runs on a default instead.
 */
async function durationField() {
  // outside a built gateway (a plain Node-RED) the nodes still load, and say why they cannot run
  const parse = await durationParser().catch(() => () => {
    throw new Error('no duration parser: not running on a built Langbiang gateway');
  });
  return (label, value, defaultValue) => {
    const empty = value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
    try {
      return parse(empty ? defaultValue : value, { bare: 'm' });
    } catch (err) {
      throw new Error(`${label}: ${err.message}`);
    }
  };
}

module.exports = { bridgeOf, list, num, durationField };
