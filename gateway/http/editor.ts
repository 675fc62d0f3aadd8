import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type EditorTarget, proxyEditorRequest, proxyEditorUpgrade } from '../../flows/host/editor-proxy.js';
import { HttpError, redirect } from './respond.js';
import type { Principal } from './router.js';

/** What the HTTP layer needs of the flows runtime (the gateway's FlowsSupervisor). */
export interface EditorSource {
  editorTarget(): EditorTarget | null;
}

export function isEditorPath(path: string): boolean {
  return path === '/red' || path.startsWith('/red/');
}

/**
 * Who may use the Node-RED editor: a technician with a browser session. API tokens are refused
 * (a token is for reading data, not for deploying code onto the gateway), farmers too.
 */
function authorize(who: Principal | null): string {
  if (!who) throw new HttpError(401, 'authentication required', {}, { 'www-authenticate': 'Bearer realm="langbiang"' });
  if (who.kind !== 'session') throw new HttpError(403, 'the flow editor needs a technician login, not an API token');
  if (who.role !== 'technician') throw new HttpError(403, 'the flow editor is for technicians');
  return who.user;
}

/**
 * The editor cannot send the console's CSRF token, so its writes are guarded by the browser's own
 * signals instead: a cross-site Origin or Sec-Fetch-Site is refused (the session cookie is
 * SameSite=Strict besides).
 */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin !== undefined) {
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  }
  const site = req.headers['sec-fetch-site'];
  return site === undefined || site === 'same-origin' || site === 'none';
}

/** `/red/…`: the session check here, then the request goes to the Node-RED child as is. */
export function handleEditor(
  req: IncomingMessage,
  res: ServerResponse,
  who: Principal | null,
  flows: EditorSource | null,
): void {
  const user = authorize(who);
  if (req.method !== 'GET' && req.method !== 'HEAD' && !sameOrigin(req))
    throw new HttpError(403, 'cross-site request refused');
  if (!flows) throw new HttpError(404, 'Node-RED is not enabled on this gateway (config flows.enabled)');
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/red') {
    redirect(res, '/red/');
    return;
  }
  const target = flows.editorTarget();
  if (!target)
    throw new HttpError(
      503,
      'the flows runtime is starting or restarting; try again in a moment',
      {},
      { 'retry-after': '5' },
    );
  proxyEditorRequest(target, user, req, res);
}

/** The editor's websocket (`/red/comms`); every other upgrade is refused. */
export function handleEditorUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  who: Principal | null,
  flows: EditorSource | null,
): void {
  const refuse = (status: number, text: string) => {
    socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  };
  socket.on('error', () => socket.destroy());
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/red/comms') {
    refuse(404, 'Not Found');
    return;
  }
  let user: string;
  try {
    user = authorize(who);
  } catch (err) {
    refuse((err as HttpError).status, (err as HttpError).status === 401 ? 'Unauthorized' : 'Forbidden');
    return;
  }
  const target = flows?.editorTarget();
  if (!sameOrigin(req)) refuse(403, 'Forbidden');
  else if (!target) refuse(503, 'Service Unavailable');
  else proxyEditorUpgrade(target, user, req, socket, head);
}
