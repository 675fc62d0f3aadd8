import { createReadStream, realpathSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, sep } from 'node:path';

/**
 * The served mode of open data: the output directory as static files, read-only, for a portal to
 * harvest (`/catalog.jsonld`, `/DATASET/DAY.csv`…). Nothing outside the directory is reachable:
 * paths are resolved, symlinks included, and must stay inside it. Open data: any origin may read.
 */
const TYPES: Record<string, string> = {
  '.jsonld': 'application/ld+json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
};

export function serveOpenData(dir: string, port: number, host: string): Promise<Server> {
  const root = realpathSync(dir);
  const server = createServer((req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (path === '/') path = '/catalog.jsonld';
    const type = TYPES[extname(path)];
    let file: string;
    try {
      file = realpathSync(join(root, path));
      if (!type || !file.startsWith(root + sep) || !statSync(file).isFile()) throw new Error('not served');
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': type, 'Content-Length': statSync(file).size, 'Cache-Control': 'max-age=300' });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
