import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, statSync, truncateSync, type WriteStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { dirname } from 'node:path';
import { describeError, LangbiangError } from '../core/errors.js';

/**
 * A download that survives a bad cellular link: the bytes go to a `.part` file, and every new
 * attempt — after a dropped connection, or after the gateway restarted — asks for the rest with an
 * HTTP Range request. A server that ignores Range (200 instead of 206) gets the file from zero.
 * Only node's own http/https: no dependency for the one thing that must work in the field.
 */
export interface DownloadOptions {
  url: string;
  /** the `.part` file; its length is what we already have */
  partFile: string;
  /** expected length and hash (from the signed order): anything else is refused */
  size: number;
  sha256: string;
  /** average bytes per second at most (a cellular plan); unset: as fast as the link goes */
  maxBytesPerSec?: number;
  /** bytes held, after each chunk written */
  onProgress?: (have: number, size: number) => void;
  /** a dropped attempt, before the wait for the next one */
  onRetry?: (attempt: number, waitMs: number, problem: string) => void;
  signal?: AbortSignal;
  /** attempts in a row that brought no new byte before giving up */
  maxStalledAttempts?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  /** one attempt with no byte for this long is dropped */
  idleTimeoutMs?: number;
  /** may this redirect target be fetched (the same URL rule as the order's) */
  allowUrl?: (url: string) => string | null;
}

const MAX_REDIRECTS = 5;

/** Fetches until `partFile` holds `size` bytes with the right hash; throws LangbiangError UPDATE_DOWNLOAD otherwise. */
export async function downloadResumable(o: DownloadOptions): Promise<void> {
  mkdirSync(dirname(o.partFile), { recursive: true, mode: 0o750 });
  const maxStalled = o.maxStalledAttempts ?? 8;
  const minMs = o.retryMinMs ?? 1000;
  const maxMs = o.retryMaxMs ?? 60_000;
  let stalled = 0;
  let attempt = 0;
  for (;;) {
    throwIfAborted(o.signal);
    const before = partLength(o.partFile);
    if (before > o.size) truncateSync(o.partFile, 0);
    if (before === o.size) break;
    attempt++;
    try {
      await fetchOnce(o, partLength(o.partFile));
      if (partLength(o.partFile) === o.size) break;
      throw new Error(`the connection ended at ${partLength(o.partFile)} of ${o.size} bytes`);
    } catch (err) {
      if (o.signal?.aborted) throw abortError();
      if (err instanceof LangbiangError) throw err; // not worth retrying (a 404, too many bytes)
      stalled = partLength(o.partFile) > before ? 0 : stalled + 1;
      if (stalled >= maxStalled)
        throw new LangbiangError(
          'UPDATE_DOWNLOAD',
          `download failed: ${stalled} attempts in a row brought nothing (${describeError(err)})`,
        );
      const wait = Math.min(maxMs, minMs * 2 ** Math.min(stalled, 10)) * (0.75 + Math.random() * 0.5);
      o.onRetry?.(attempt, Math.round(wait), describeError(err));
      await sleep(wait, o.signal);
    }
  }
  const digest = await sha256File(o.partFile);
  if (digest !== o.sha256) {
    truncateSync(o.partFile, 0);
    throw new LangbiangError(
      'UPDATE_DOWNLOAD',
      `downloaded file does not match the order's sha256 (got ${digest.slice(0, 12)}…, expected ${o.sha256.slice(0, 12)}…); discarded`,
    );
  }
}

function partLength(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** One HTTP exchange: appends what comes to the `.part` file (from zero when the server ignores Range). */
function fetchOnce(o: DownloadOptions, have: number, url = o.url, redirects = 0): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const u = new URL(url);
    const get = u.protocol === 'https:' ? https.get : http.get;
    const headers: Record<string, string> = { 'user-agent': 'langbiang-update', 'accept-encoding': 'identity' };
    if (have > 0) headers.range = `bytes=${have}-`;
    let out: WriteStream | null = null;
    let settled = false;
    const finish = (err?: unknown) => {
      if (settled) return;
      settled = true;
      o.signal?.removeEventListener('abort', onAbort);
      const done = () => (err ? reject(err) : resolve());
      if (out) out.end(done);
      else done();
    };
    const req = get(u, { headers, timeout: o.idleTimeoutMs ?? 30_000 }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects >= MAX_REDIRECTS) return finish(new LangbiangError('UPDATE_DOWNLOAD', 'too many redirects'));
        const next = new URL(res.headers.location, u).toString();
        const problem = o.allowUrl?.(next) ?? null;
        if (problem) return finish(new LangbiangError('UPDATE_DOWNLOAD', `redirect refused: ${problem}`));
        settled = true;
        o.signal?.removeEventListener('abort', onAbort);
        fetchOnce(o, have, next, redirects + 1).then(resolve, reject);
        return;
      }
      let start: number;
      if (status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
        if (!m || Number(m[1]) !== have) {
          // a range we did not ask for: start again from zero rather than guess
          res.resume();
          truncateSync(o.partFile, 0);
          return finish(new Error('the server answered another range than the one asked; starting again'));
        }
        start = have;
      } else if (status === 200) {
        start = 0; // Range ignored: the whole file again
      } else if (status === 416 && have > 0) {
        res.resume();
        truncateSync(o.partFile, 0);
        return finish(new Error('the server has fewer bytes than we hold; starting again'));
      } else {
        res.resume();
        const err = new Error(`HTTP ${status} from ${u.host}`);
        // the file is not there (or not for us): retrying does not help
        return finish(
          status === 404 || status === 403 || status === 410
            ? new LangbiangError('UPDATE_DOWNLOAD', `download failed: ${err.message}`)
            : err,
        );
      }
      out = createWriteStream(o.partFile, start === 0 ? { flags: 'w' } : { flags: 'a' });
      out.on('error', (err) => {
        req.destroy();
        finish(err);
      });
      let held = start;
      const began = Date.now();
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        held += chunk.length;
        received += chunk.length;
        if (held > o.size) {
          req.destroy();
          truncateSync(o.partFile, 0);
          return finish(new LangbiangError('UPDATE_DOWNLOAD', `the server sent more than the order's ${o.size} bytes`));
        }
        const full = !out!.write(chunk);
        o.onProgress?.(held, o.size);
        // a bandwidth cap: pause until the average rate is back under it
        const ahead = o.maxBytesPerSec ? (received / o.maxBytesPerSec) * 1000 - (Date.now() - began) : 0;
        if (full || ahead > 0) {
          res.pause();
          const resume = () => res.resume();
          const timer = ahead > 0 ? setTimeout(resume, ahead) : null;
          if (full) out!.once('drain', () => (timer ? undefined : resume()));
        }
      });
      res.on('end', () => finish());
      res.on('aborted', () => finish(new Error('the connection dropped mid-body')));
      res.on('error', (err) => finish(err));
    });
    req.on('timeout', () => req.destroy(new Error('no data for too long')));
    req.on('error', (err) => finish(err));
    const onAbort = () => {
      req.destroy();
      finish(abortError());
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function abortError(): LangbiangError {
  return new LangbiangError('UPDATE_DOWNLOAD', 'download cancelled');
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortError();
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
