import { stringify } from 'yaml';
import { parseDuration } from '../config/units.js';
import { describeError } from '../core/errors.js';

/**
 * The city's config message on `langbiang/v1/{gatewayId}/config` (QoS 1; may be retained, so a
 * gateway that was offline gets the newest config when it comes back):
 *
 *   { "v": 1, "version": 7, "config": "gateway:\n  id: …" | { …the config as JSON… }, "watch": "5m" }
 *
 * It travels inside a signed envelope (gateway/core/signed.ts, kind `config`); who signed it is
 * the actor.
 *
 * `version` is an integer that only grows; a version the gateway has already tried is ignored,
 * so a retained message is applied once, not at every reconnect.
 */
export const CONFIG_MESSAGE_VERSION = 1;
export const MAX_CONFIG_MESSAGE = 256 * 1024;
/**
 * Longest validity window of a signed config message. Long, because a config may wait retained
 * on the broker for a gateway that is offline for days; replay within it is stopped by `version`.
 */
export const MAX_CONFIG_LIFETIME_MS = 30 * 86_400_000;
const KEYS = new Set(['v', 'version', 'config', 'watch']);

export interface ConfigMessage {
  version: number;
  /** the config as YAML text */
  text: string;
  watchMs?: number;
}

export type ParsedConfigMessage =
  | { ok: true; message: ConfigMessage }
  | { ok: false; version: number | null; problem: string };

export function parseConfigMessage(payload: Buffer | string): ParsedConfigMessage {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > MAX_CONFIG_MESSAGE)
    return {
      ok: false,
      version: null,
      problem: `config message too large (${size} bytes, at most ${MAX_CONFIG_MESSAGE})`,
    };
  let doc: unknown;
  try {
    doc = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch (err) {
    return { ok: false, version: null, problem: `config message is not JSON: ${describeError(err)}` };
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    return { ok: false, version: null, problem: 'config message is not a JSON object' };
  const o = doc as Record<string, unknown>;
  const version = Number.isSafeInteger(o.version) && (o.version as number) > 0 ? (o.version as number) : null;
  const bad = (problem: string): ParsedConfigMessage => ({ ok: false, version, problem });
  for (const k of Object.keys(o)) if (!KEYS.has(k)) return bad(`unknown key "${k.slice(0, 40)}"`);
  if (o.v !== undefined && o.v !== CONFIG_MESSAGE_VERSION)
    return bad(`message version ${JSON.stringify(o.v)} is not supported`);
  if (version === null) return bad('version must be a positive integer');
  let text: string;
  if (typeof o.config === 'string') text = o.config;
  else if (o.config !== null && typeof o.config === 'object' && !Array.isArray(o.config)) text = stringify(o.config);
  else return bad('config must be YAML text or a JSON object');
  const message: ConfigMessage = { version, text };
  if (o.watch !== undefined) {
    try {
      if (typeof o.watch !== 'string' && typeof o.watch !== 'number') throw new Error('not a duration');
      message.watchMs = parseDuration(o.watch);
    } catch {
      return bad(`watch must be a duration like 5m, got ${JSON.stringify(o.watch).slice(0, 40)}`);
    }
  }
  return { ok: true, message };
}
