import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import { packageRoot } from '../config/demo.js';
import { HttpError, SECURITY_HEADERS } from './respond.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webmanifest': 'application/manifest+json',
};

interface Asset {
  body: Buffer;
  gz: Buffer | null;
  etag: string;
  type: string;
  mtimeMs: number;
}

/** The panel's files: tsc does not copy them to dist/, so they are read from the package. */
export function publicDir(): string {
  return join(packageRoot(), 'gateway', 'http', 'public');
}

function uplotDir(): string {
  const req = createRequire(import.meta.url);
  return dirname(req.resolve('uplot'));
}

/**
 * Serves the panel's assets and the chart library from the gateway itself (no CDN: phones on a
 * farm's Wi-Fi often have no internet). Files are cached in memory with a gzip copy and an ETag,
 * and re-read when they change on disk.
 */
export class StaticFiles {
  private readonly cache = new Map<string, Asset>();
  private readonly root = publicDir();
  private vendor: Record<string, string> | null = null;

  /** /vendor/NAME: only the two uPlot files, never anything else from node_modules. */
  vendorFile(name: string): string {
    this.vendor ??= {
      'uPlot.iife.min.js': join(uplotDir(), 'uPlot.iife.min.js'),
      'uPlot.min.css': join(uplotDir(), 'uPlot.min.css'),
    };
    const f = this.vendor[name];
    if (!f) throw new HttpError(404, 'not found');
    return f;
  }

  /** A file under public/, refusing anything that could step outside it. */
  publicFile(rel: string): string {
    let decoded: string;
    try {
      decoded = decodeURIComponent(rel);
    } catch {
      throw new HttpError(400, 'bad path');
    }
    if (
      !/^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(decoded) ||
      decoded.split('/').some((s) => s === '..' || s === '' || s.startsWith('.'))
    )
      throw new HttpError(404, 'not found');
    const file = resolve(this.root, decoded);
    if (!file.startsWith(this.root + sep)) throw new HttpError(404, 'not found');
    return file;
  }

  send(req: IncomingMessage, res: ServerResponse, file: string, extraHeaders: Record<string, string> = {}): void {
    const a = this.load(file);
    const headers: Record<string, string> = {
      ...SECURITY_HEADERS,
      'content-type': a.type,
      etag: a.etag,
      // Revalidate every time: a Pi answers a 304 in a millisecond, and a new release shows at once.
      'cache-control': 'no-cache',
      vary: 'accept-encoding',
      ...extraHeaders,
    };
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const gzip = a.gz && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? a.gz! : a.body;
    if (gzip) headers['content-encoding'] = 'gzip';
    headers['content-length'] = String(body.length);
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private load(file: string): Asset {
    let mtimeMs: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new Error('not a file');
      mtimeMs = st.mtimeMs;
    } catch {
      throw new HttpError(404, 'not found');
    }
    const have = this.cache.get(file);
    if (have && have.mtimeMs === mtimeMs) return have;
    const body = readFileSync(file);
    const type = TYPES[extname(file)] ?? 'application/octet-stream';
    const text = type.startsWith('text/') || type.includes('json') || type.includes('svg');
    const a: Asset = {
      body,
      gz: text && body.length > 512 ? gzipSync(body, { level: 9 }) : null,
      etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 20)}"`,
      type,
      mtimeMs,
    };
    this.cache.set(file, a);
    return a;
  }
}
