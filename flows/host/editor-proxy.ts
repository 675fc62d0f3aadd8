import { type IncomingMessage, type OutgoingHttpHeaders, request, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';

export interface EditorTarget {
  host: string;
  port: number;
  /** the header Node-RED's adminAuth `tokens` reads */
  header: string;
  token: (user: string) => string;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

/**
 * Headers for the hop to Node-RED. The gateway's own credentials (cookie, authorization) stay
 * here, and whatever a browser put in the editor token header is replaced: only the gateway,
 * after its session check, says who the editor user is.
 */
function forwardHeaders(
  req: IncomingMessage,
  target: EditorTarget,
  user: string,
  keepUpgrade: boolean,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers)) {
    const key = k.toLowerCase();
    if (v === undefined || key === 'cookie' || key === 'authorization' || key === target.header) continue;
    if (HOP_BY_HOP.has(key) && !(keepUpgrade && (key === 'upgrade' || key === 'connection'))) continue;
    out[key] = v;
  }
  out.host = `${target.host}:${target.port}`;
  out[target.header] = target.token(user);
  out['x-forwarded-for'] = req.socket.remoteAddress ?? '';
  return out;
}

/** Proxies one editor/admin-API request (`/red/...`, path kept) to the Node-RED child. */
export function proxyEditorRequest(
  target: EditorTarget,
  user: string,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const upstream = request(
    {
      host: target.host,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: forwardHeaders(req, target, user, false),
    },
    (up) => {
      const headers: OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
      res.writeHead(up.statusCode ?? 502, headers);
      up.pipe(res);
    },
  );
  upstream.on('error', () => {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ error: 'the flows runtime is restarting; try again in a moment' }));
    } else res.destroy();
  });
  req.on('aborted', () => upstream.destroy());
  req.pipe(upstream);
}

/** Proxies the editor's websocket (`/red/comms`) upgrade to the child, then splices the two sockets. */
export function proxyEditorUpgrade(
  target: EditorTarget,
  user: string,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void {
  const upstream = connect(target.port, target.host);
  const fail = () => {
    socket.destroy();
    upstream.destroy();
  };
  upstream.on('error', fail);
  socket.on('error', fail);
  upstream.once('connect', () => {
    const headers = forwardHeaders(req, target, user, true);
    let text = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(headers)) {
      for (const one of Array.isArray(v) ? v : [v]) text += `${k}: ${String(one).replace(/[\r\n]/g, '')}\r\n`;
    }
    upstream.write(`${text}\r\n`);
    if (head?.length) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  socket.on('close', () => upstream.destroy());
  upstream.on('close', () => socket.destroy());
}
