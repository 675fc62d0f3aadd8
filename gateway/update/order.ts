import { isVersion } from './version.js';

/**
 * The city's update order on `langbiang/v1/{gatewayId}/update` (docs/protocol.md, "Update orders"):
 *
 *   { "v": 1, "version": "1.4.0", "url": "https://…/langbiang-1.4.0-arm64.lbr",
 *     "size": 18234567, "sha256": "<64 hex>" }
 *
 * It travels inside the signed envelope (gateway/core/signed.ts, kind `update`, signed with a city
 * CONTROL key): the order says which bundle this gateway should fetch. The bundle itself carries
 * its own signature by a RELEASE key, checked by the installer; the order's `size` and `sha256` make
 * the transport (the URL's server, a proxy, a cache) untrusted: any other byte is refused.
 */
export const UPDATE_ORDER_VERSION = 1;
/** the signed envelope of an order is small; anything bigger is not an order */
export const MAX_UPDATE_ORDER_BYTES = 16 * 1024;
/**
 * Longest validity window of a signed order. Orders are published retained, so a gateway that is
 * offline for days still gets one; replay inside the window is stopped by the version rule (never
 * the running version or an older one) and by the issue time (never an older order than the last).
 */
export const MAX_UPDATE_ORDER_LIFETIME_MS = 14 * 86_400_000;
/** a release bundle larger than this is not one (a whole image is not what this carries) */
export const MAX_BUNDLE_BYTES = 1024 * 1024 * 1024;

export interface UpdateOrder {
  version: string;
  url: string;
  size: number;
  /** lower-case hex */
  sha256: string;
}

const KEYS = new Set(['v', 'version', 'url', 'size', 'sha256']);
const SHA256 = /^[0-9a-f]{64}$/;

export type ParsedOrder = { ok: true; order: UpdateOrder } | { ok: false; problem: string };

/** Reads the order inside a verified envelope (its `message`); one sentence per problem. */
export function parseUpdateOrder(message: unknown): ParsedOrder {
  if (message === null || typeof message !== 'object' || Array.isArray(message))
    return { ok: false, problem: 'update order is not a JSON object' };
  const o = message as Record<string, unknown>;
  const bad = (problem: string): ParsedOrder => ({ ok: false, problem: `update order: ${problem}` });
  for (const k of Object.keys(o)) if (!KEYS.has(k)) return bad(`unknown key "${k.slice(0, 40)}"`);
  if (o.v !== UPDATE_ORDER_VERSION) return bad(`v must be ${UPDATE_ORDER_VERSION}`);
  if (!isVersion(o.version)) return bad('version must be a release version like 1.4.0 or 1.4.0-rc.1');
  if (typeof o.url !== 'string' || o.url.length > 2048) return bad('url must be a URL of at most 2048 characters');
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    return bad(`url ${JSON.stringify(o.url.slice(0, 80))} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return bad('url must be https:// (or http://)');
  if (url.username || url.password) return bad('url must not carry a user name or password');
  if (!Number.isSafeInteger(o.size) || (o.size as number) <= 0 || (o.size as number) > MAX_BUNDLE_BYTES)
    return bad(`size must be a whole number of bytes between 1 and ${MAX_BUNDLE_BYTES}`);
  if (typeof o.sha256 !== 'string' || !SHA256.test(o.sha256)) return bad('sha256 must be 64 lower-case hex digits');
  return { ok: true, order: { version: o.version, url: o.url, size: o.size as number, sha256: o.sha256 } };
}

/** The order as the city tool signs it. */
export function updateOrderMessage(order: UpdateOrder): Record<string, unknown> {
  return { v: UPDATE_ORDER_VERSION, version: order.version, url: order.url, size: order.size, sha256: order.sha256 };
}

/**
 * Whether a URL may be fetched: https:// always; http:// only to this machine (tests, a local
 * mirror) or with `sync.remoteUpdate.allowHttp`. The order's hash makes the bytes trustworthy
 * whatever the transport; https keeps what a gateway runs from being seen on the way.
 */
export function urlProblem(raw: string, allowHttp: boolean): string | null {
  const url = new URL(raw);
  if (url.protocol === 'https:') return null;
  if (url.protocol !== 'http:') return `${url.protocol} URLs are not fetched`;
  if (allowHttp || isLoopback(url.hostname)) return null;
  return `http:// URLs are fetched only from this machine unless sync.remoteUpdate.allowHttp is set; use https://`;
}

/**
 * Whether a redirect may be followed: the URL rule, and never from another machine to this one —
 * a download server must not be able to make the gateway send requests to its own local services
 * (Node-RED, the console) over the http:// that is allowed to loopback for a local mirror.
 */
export function redirectProblem(from: string, to: string, allowHttp: boolean): string | null {
  const problem = urlProblem(to, allowHttp);
  if (problem) return problem;
  if (isLoopback(new URL(to).hostname) && !isLoopback(new URL(from).hostname))
    return 'a redirect from another machine to this one is not followed';
  return null;
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
