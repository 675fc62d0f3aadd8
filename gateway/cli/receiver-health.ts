import { createServer, type Server } from 'node:http';

/** What the health endpoint reads of a running receiver. */
export interface ReceiverHealthSource {
  stats(): { connected: boolean; lastMessageAt?: number };
}

/**
 * `langbiang receiver --health-port N`: GET /healthz on 127.0.0.1 for the container's
 * HEALTHCHECK and any probe: 200 `ok` while connected to the broker, 503 `degraded` with the
 * problem in words otherwise (the same convention as the gateway's /healthz). Counters only,
 * nothing secret; every other path is 404.
 */
export function startReceiverHealth(
  source: ReceiverHealthSource,
  opts: { port: number; host?: string; broker: string },
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/healthz' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const s = source.stats();
    const problems = s.connected ? [] : [`not connected to the broker ${opts.broker} (reconnecting with backoff)`];
    const body = {
      status: problems.length ? 'degraded' : 'ok',
      problems,
      ...s,
      lastMessageAt: s.lastMessageAt ? new Date(s.lastMessageAt).toISOString() : null,
    };
    res
      .writeHead(problems.length ? 503 : 200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      .end(`${JSON.stringify(body)}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
