import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LangbiangError } from '../../gateway/core/errors.js';
import { downloadResumable } from '../../gateway/update/download.js';

/**
 * The download of an ordered bundle over a bad link, against real HTTP servers on loopback that
 * misbehave the way cellular links and odd servers do: a connection cut mid-body, a server that
 * ignores Range, a restart with half a file, bytes that are not the ordered ones.
 */
const BODY = randomBytes(300_000);
const SHA = createHash('sha256').update(BODY).digest('hex');

interface Seen {
  range: string | undefined;
}

type Behaviour = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

const servers: http.Server[] = [];
const dirs: string[] = [];

async function serve(behaviour: Behaviour): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ range: req.headers.range });
    behaviour(req, res, seen.length);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/langbiang-1.4.0-x64.lbr`, seen };
}

function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'lb-dl-'));
  dirs.push(d);
  return d;
}

/** Serves BODY with Range support; `cutAt` (bytes of body) destroys the socket on the first request. */
function rangeServer(cutAt?: number): Behaviour {
  return (req, res, n) => {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const slice = BODY.subarray(start);
    if (m) {
      res.writeHead(206, {
        'content-length': slice.length,
        'content-range': `bytes ${start}-${BODY.length - 1}/${BODY.length}`,
      });
    } else res.writeHead(200, { 'content-length': BODY.length });
    if (n === 1 && cutAt !== undefined) {
      res.write(slice.subarray(0, cutAt), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(slice);
  };
}

afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const fast = { retryMinMs: 20, retryMaxMs: 50, maxStalledAttempts: 3 };

describe('update download', () => {
  it('resumes with a Range request after the connection is cut mid-body', async () => {
    const { url, seen } = await serve(rangeServer(100_000));
    const part = path.join(tmp(), `${SHA}.part`);
    const progress: number[] = [];
    const retries: string[] = [];
    await downloadResumable({
      url,
      partFile: part,
      size: BODY.length,
      sha256: SHA,
      ...fast,
      onProgress: (have) => progress.push(have),
      onRetry: (_a, _w, problem) => retries.push(problem),
    });
    expect(readFileSync(part).equals(BODY)).toBe(true);
    expect(seen).toHaveLength(2);
    expect(seen[0]!.range).toBeUndefined();
    // the second request asked for exactly what was missing
    const asked = Number(/^bytes=(\d+)-$/.exec(seen[1]!.range ?? '')?.[1]);
    expect(asked).toBeGreaterThan(0);
    expect(asked).toBeLessThan(BODY.length);
    expect(retries).toHaveLength(1);
    expect(progress.at(-1)).toBe(BODY.length);
  });

  it('resumes a .part file left by a restart from where it ends', async () => {
    const { url, seen } = await serve(rangeServer());
    const part = path.join(tmp(), `${SHA}.part`);
    writeFileSync(part, BODY.subarray(0, 123_456));
    await downloadResumable({ url, partFile: part, size: BODY.length, sha256: SHA, ...fast });
    expect(seen.map((s) => s.range)).toEqual(['bytes=123456-']);
    expect(readFileSync(part).equals(BODY)).toBe(true);
  });

  it('starts again from zero when the server ignores Range', async () => {
    let served = 0;
    const { url, seen } = await serve((_req, res) => {
      served++;
      res.writeHead(200, { 'content-length': BODY.length });
      if (served === 1) {
        res.write(BODY.subarray(0, 50_000), () => setTimeout(() => res.socket?.destroy(), 20));
        return;
      }
      res.end(BODY);
    });
    const part = path.join(tmp(), `${SHA}.part`);
    await downloadResumable({ url, partFile: part, size: BODY.length, sha256: SHA, ...fast });
    expect(seen).toHaveLength(2);
    expect(seen[1]!.range).toMatch(/^bytes=\d+-$/); // asked for the rest…
    expect(statSync(part).size).toBe(BODY.length); // …got the whole file, and did not append it
    expect(readFileSync(part).equals(BODY)).toBe(true);
  });

  it('refuses bytes that are not the ordered ones and empties the .part file', async () => {
    const other = Buffer.from(BODY);
    other[1000] = other[1000]! ^ 0xff;
    const { url } = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': other.length });
      res.end(other);
    });
    const part = path.join(tmp(), `${SHA}.part`);
    const err = await downloadResumable({ url, partFile: part, size: BODY.length, sha256: SHA, ...fast }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LangbiangError);
    expect((err as LangbiangError).code).toBe('UPDATE_DOWNLOAD');
    expect((err as Error).message).toMatch(/does not match the order's sha256/);
    expect(existsSync(part) ? statSync(part).size : 0).toBe(0);
  });

  it('refuses a server that sends more than the ordered size', async () => {
    const { url } = await serve((_req, res) => {
      res.writeHead(200);
      res.end(Buffer.concat([BODY, Buffer.alloc(10)]));
    });
    const part = path.join(tmp(), `${SHA}.part`);
    const err = await downloadResumable({ url, partFile: part, size: BODY.length, sha256: SHA, ...fast }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toMatch(/more than the order's 300000 bytes/);
  });

  it('gives up on a 404 at once, and after a few attempts on a server that never answers whole', async () => {
    const missing = await serve((_req, res) => {
      res.writeHead(404);
      res.end();
    });
    const part = path.join(tmp(), `${SHA}.part`);
    await expect(
      downloadResumable({ url: missing.url, partFile: part, size: BODY.length, sha256: SHA, ...fast }),
    ).rejects.toThrow(/HTTP 404/);
    expect(missing.seen).toHaveLength(1);

    const broken = await serve((_req, res) => res.socket?.destroy());
    await expect(
      downloadResumable({ url: broken.url, partFile: part, size: BODY.length, sha256: SHA, ...fast }),
    ).rejects.toThrow(/3 attempts in a row brought nothing/);
    expect(broken.seen).toHaveLength(3);
  });

  it('keeps under the bandwidth cap (a lower bound: a slow machine only makes it longer)', async () => {
    const { url } = await serve(rangeServer());
    const part = path.join(tmp(), `${SHA}.part`);
    const started = Date.now();
    // 300 000 bytes at 150 000 B/s: the cap holds the download back for about two seconds
    await downloadResumable({ url, partFile: part, size: BODY.length, sha256: SHA, maxBytesPerSec: 150_000, ...fast });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(readFileSync(part).equals(BODY)).toBe(true);
  });

  it('a cancelled download keeps its .part file for the next start', async () => {
    const { url } = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': BODY.length });
      res.write(BODY.subarray(0, 64_000)); // then nothing: a stalled link
    });
    const part = path.join(tmp(), `${SHA}.part`);
    const abort = new AbortController();
    const done = downloadResumable({ url, partFile: part, size: BODY.length, sha256: SHA, signal: abort.signal });
    while (!existsSync(part) || statSync(part).size < 64_000) await new Promise((r) => setTimeout(r, 20));
    abort.abort();
    await expect(done).rejects.toThrow(/cancelled/);
    expect(statSync(part).size).toBe(64_000);
  });
});
