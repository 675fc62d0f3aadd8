import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig } from '../config/index.js';
import type { StoredReading } from '../core/reading.js';
import { SECURITY_HEADERS, sendJson } from './respond.js';

/**
 * The public car-park page (`panel.publicParking`, off by default): for a roadside sign or a
 * passer-by's phone, the free spaces of the configured car parks and nothing else — no login, no
 * other data, no script, rate limited per address. Everything else on the gateway still needs a
 * session.
 */
export const PUBLIC_PARKING_PATHS = ['/public/parking', '/public/parking.json'] as const;

interface CarPark {
  id: string;
  name: string;
  freeSpaces: number | null;
  capacity: number | null;
  /** ISO time of the reading */
  updated: string | null;
}

/** A token bucket per client address, bounded in memory. */
export class PerAddressLimit {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
    private readonly maxAddresses = 4096,
  ) {}

  take(ip: string): boolean {
    const t = this.now();
    let b = this.buckets.get(ip);
    if (!b) {
      if (this.buckets.size >= this.maxAddresses) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
      b = { tokens: this.perMinute, at: t };
      this.buckets.set(ip, b);
    }
    b.tokens = Math.min(this.perMinute, b.tokens + ((t - b.at) * this.perMinute) / 60_000);
    b.at = t;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

export function carParks(config: GatewayConfig, latest: () => StoredReading[]): CarPark[] {
  const pub = config.panel.publicParking;
  const wanted = new Set(pub.carParks);
  const free = new Map<string, StoredReading>();
  for (const r of latest()) if (wanted.has(r.device) && r.point === 'free_spaces') free.set(r.device, r);
  return pub.carParks.map((id) => {
    const dev = config.devices.find((d) => d.id === id);
    const r = free.get(id);
    const capacity = dev?.options?.capacity;
    return {
      id,
      name: dev?.name ?? id,
      freeSpaces: r && r.quality === 'good' && typeof r.value === 'number' ? r.value : null,
      capacity: typeof capacity === 'number' ? capacity : null,
      updated: r ? new Date(r.ts).toISOString() : null,
    };
  });
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

function page(list: CarPark[]): string {
  const rows = list
    .map(
      (p) =>
        `<li><span class="n">${escapeHtml(p.name)}</span><strong>${p.freeSpaces ?? '–'}</strong><span class="u">chỗ trống · free</span></li>`,
    )
    .join('');
  // inline style only (no script): allowed by a page-specific CSP below
  return `<!doctype html><html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta http-equiv="refresh" content="30"><title>Bãi đỗ xe · Parking</title><style>body{font:18px system-ui,sans-serif;margin:1rem;background:#111;color:#fff}ul{list-style:none;padding:0}li{display:flex;gap:.6rem;align-items:baseline;padding:.6rem 0;border-bottom:1px solid #333}.n{flex:1}strong{font-size:2.4rem;color:#7CFC00}.u{color:#aaa;font-size:.8rem}</style></head><body><h1>Bãi đỗ xe · Parking</h1><ul>${rows}</ul></body></html>`;
}

/** Answers a public parking request; false when the path is not one (the caller goes on as usual). */
export function handlePublicParking(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  config: GatewayConfig,
  latest: () => StoredReading[],
  limit: PerAddressLimit,
): boolean {
  if (!config.panel.publicParking.enabled || !(PUBLIC_PARKING_PATHS as readonly string[]).includes(path)) return false;
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    sendJson(res, 405, { error: 'use GET' });
    return true;
  }
  if (!limit.take(req.socket.remoteAddress ?? 'unknown')) {
    sendJson(res, 429, { error: 'too many requests' }, { 'retry-after': '10' });
    return true;
  }
  const list = carParks(config, latest);
  if (path.endsWith('.json')) {
    sendJson(res, 200, { carParks: list }, { 'cache-control': 'public, max-age=10' });
    return true;
  }
  const body = Buffer.from(page(list));
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-security-policy':
      "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'public, max-age=10',
    'content-length': String(body.length),
  });
  res.end(method === 'HEAD' ? undefined : body);
  return true;
}
