import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HealthSource {
  health(): Record<string, unknown>;
}

/**
 * The gateway's one HTTP port. This release serves `/healthz` (liveness, no auth, no secrets);
 * every other route answers 401 until the panel's login exists — never open by default.
 */
export class HttpServer {
  private server: Server | null = null;

  constructor(
    private readonly source: HealthSource,
    private readonly opts: { host: string; port: number },
  ) {}

  async listen(): Promise<AddressInfo> {
    const server = createServer((req, res) => this.handle(req, res));
    server.headersTimeout = 10_000;
    server.requestTimeout = 15_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections?.();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const headers = {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    };
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
        const body = JSON.stringify(this.source.health());
        res.writeHead(200, headers);
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      res.writeHead(401, { ...headers, 'www-authenticate': 'Bearer realm="langbiang"' });
      res.end(JSON.stringify({ error: 'authentication required' }));
    } catch {
      if (!res.headersSent) res.writeHead(500, headers);
      res.end(JSON.stringify({ error: 'internal error' }));
    }
  }
}
