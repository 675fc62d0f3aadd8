import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { loadProfiles } from '../../hardware/profiles.js';
import { AuthContext } from '../auth/index.js';
import { describeError } from '../core/errors.js';
import type { DeviceProfile } from '../core/point.js';
import { History } from '../history/index.js';
import type { Logger } from '../log.js';
import { registerAdminRoutes } from './api-admin.js';
import { registerAuthRoutes, SESSION_COOKIE } from './api-auth.js';
import { registerDataRoutes } from './api-data.js';
import { handleEditor, handleEditorUpgrade, isEditorPath } from './editor.js';
import { Metrics } from './metrics.js';
import { PanelSettings } from './panel-settings.js';
import { HttpError, parseCookies, redirect, SECURITY_HEADERS, sendJson } from './respond.js';
import { type Ctx, HANDLED, type Principal, Router } from './router.js';
import { StaticFiles } from './static.js';
import type { ConfigHost, Deps, HttpCounters, HttpGateway } from './types.js';

export type { ConfigHost, HttpGateway } from './types.js';

export interface HttpServerOptions {
  host: string;
  port: number;
  log?: Logger;
  /** shared across gateway restarts so sessions survive a config apply */
  auth?: AuthContext;
  configHost?: ConfigHost | null;
  /** keep the history rollup (default true) */
  history?: boolean;
}

const PAGES: Record<string, { file: string; access: 'user' | 'technician' | 'login' | 'setup' }> = {
  '/': { file: 'panel.html', access: 'user' },
  '/console': { file: 'console.html', access: 'technician' },
  '/login': { file: 'login.html', access: 'login' },
  '/setup': { file: 'setup.html', access: 'setup' },
};

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * The gateway's one HTTP port: the farmer panel (/), the technician console (/console), the JSON
 * API (/api/…), /metrics and /healthz. Every route but /healthz (and the login page's own files)
 * needs a session or an API token; roles are checked here, never only in the page.
 */
export class HttpServer {
  private server: Server | null = null;
  private readonly router = new Router();
  private readonly deps: Deps;
  private readonly metrics: Metrics;
  private readonly log: Logger | undefined;
  private history: History | null = null;
  private addr: AddressInfo | null = null;
  private profilesCache: ReadonlyMap<string, DeviceProfile> | null = null;

  constructor(
    private readonly gw: HttpGateway,
    private readonly opts: HttpServerOptions,
  ) {
    const dataDir = resolve(gw.config.gateway.dataDir);
    const log = opts.log ?? silentLogger();
    this.log = opts.log;
    const counters: HttpCounters = { requests: new Map(), loginFailures: 0, sseClients: 0 };
    this.deps = {
      gw,
      auth: opts.auth ?? new AuthContext(dataDir, log),
      settings: new PanelSettings(dataDir),
      history: null,
      log,
      configHost: opts.configHost ?? null,
      statics: new StaticFiles(),
      counters,
      profiles: () => {
        if (gw.profiles) return gw.profiles;
        const dir = gw.config.gateway.profilesDir;
        this.profilesCache ??= loadProfiles(dir ? [dir] : []);
        return this.profilesCache;
      },
      address: () =>
        this.addr
          ? `http://${this.addr.address.includes(':') ? `[${this.addr.address}]` : this.addr.address}:${this.addr.port}`
          : '',
    };
    this.metrics = new Metrics(this.deps);
    registerAuthRoutes(this.router, this.deps);
    registerDataRoutes(this.router, this.deps);
    registerAdminRoutes(this.router, this.deps);
    this.router.get(
      '/metrics',
      'technician',
      async ({ res }) => {
        const m = await this.metrics.render();
        res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': m.type, 'cache-control': 'no-store' });
        res.end(m.body);
        return HANDLED;
      },
      { token: true },
    );
  }

  get auth(): AuthContext {
    return this.deps.auth;
  }

  async listen(): Promise<AddressInfo> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.maxHeadersCount = 64;
    // the Node-RED editor's websocket (/red/comms); nothing else upgrades
    server.on('upgrade', (req, socket, head) =>
      handleEditorUpgrade(req, socket, head, this.principal(req), this.gw.flows ?? null),
    );
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.addr = server.address() as AddressInfo;
    if (this.opts.history !== false) {
      try {
        this.history = new History(resolve(this.gw.config.gateway.dataDir), this.gw.store, this.gw.events, {
          maxAgeMs: this.gw.config.storage.maxAge,
          onError: (msg) => this.log?.warn(msg),
        });
        this.deps.history = this.history;
      } catch (err) {
        this.log?.warn({ err: describeError(err) }, 'history rollup not available; charts will be empty');
      }
    }
    this.deps.auth.ensureSetupCode(this.deps.address());
    return this.addr;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    this.history?.close();
    this.history = null;
    if (!s) return;
    s.closeAllConnections?.();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let routeLabel = 'other';
    res.on('finish', () => {
      const key = `${req.method} ${routeLabel} ${res.statusCode}`;
      const c = this.deps.counters.requests;
      if (c.size < 2000 || c.has(key)) c.set(key, (c.get(key) ?? 0) + 1);
    });
    try {
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://gateway');
      } catch {
        throw new HttpError(400, 'bad request URL');
      }
      const path = url.pathname;
      const method = req.method ?? 'GET';

      if (path === '/healthz') {
        routeLabel = '/healthz';
        if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'use GET');
        sendJson(res, 200, this.gw.health());
        return;
      }

      const who = this.principal(req);

      if (isEditorPath(path)) {
        routeLabel = '/red';
        handleEditor(req, res, who, this.gw.flows ?? null);
        return;
      }

      if (method === 'GET' || method === 'HEAD') {
        // The login and setup pages need their files before anyone is logged in; they hold no data.
        if (path.startsWith('/assets/')) {
          routeLabel = '/assets';
          this.deps.statics.send(req, res, this.deps.statics.publicFile(path.slice('/assets/'.length)));
          return;
        }
        if (path.startsWith('/vendor/')) {
          routeLabel = '/vendor';
          this.deps.statics.send(req, res, this.deps.statics.vendorFile(path.slice('/vendor/'.length)));
          return;
        }
        const page = PAGES[path];
        if (page) {
          routeLabel = path;
          this.page(req, res, page, who, path);
          return;
        }
      }

      const found = this.router.match(method, path);
      if (!found || found === 'method') {
        // Without credentials nothing is revealed, not even which paths exist.
        if (!who)
          throw new HttpError(401, 'authentication required', {}, { 'www-authenticate': 'Bearer realm="langbiang"' });
        throw found === 'method' ? new HttpError(405, 'method not allowed') : new HttpError(404, 'not found');
      }
      const { route, params } = found;
      routeLabel = route.pattern;
      if (route.access !== 'public') {
        if (!who)
          throw new HttpError(401, 'authentication required', {}, { 'www-authenticate': 'Bearer realm="langbiang"' });
        if (who.kind === 'token' && !route.token)
          throw new HttpError(403, 'API tokens may only read (metrics, devices, readings)');
        if (route.access === 'technician' && who.role !== 'technician')
          throw new HttpError(403, 'this needs the technician role');
      }
      if (STATE_CHANGING.has(method)) this.checkCsrf(req, who, route.access === 'public');
      const ctx: Ctx = { req, res, url, params, ip: clientIp(req), who };
      const out = await route.handler(ctx);
      if (out === HANDLED) return;
      if (!res.headersSent) sendJson(res, res.statusCode && res.statusCode !== 200 ? res.statusCode : 200, out ?? null);
    } catch (err) {
      this.fail(res, err);
    }
  }

  private page(
    req: IncomingMessage,
    res: ServerResponse,
    page: (typeof PAGES)[string],
    who: Principal | null,
    path: string,
  ): void {
    const session = who?.kind === 'session' ? who : null;
    const target = pageRedirect(page.access, session, this.deps.auth.users.hasUsers(), path);
    if (target) {
      redirect(res, target);
      return;
    }
    this.deps.statics.send(req, res, this.deps.statics.publicFile(page.file), { 'cache-control': 'no-store' });
  }

  private principal(req: IncomingMessage): Principal | null {
    const sid = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    if (sid) {
      const s = this.deps.auth.sessions.get(sid);
      if (s) {
        // a removed user's session ends with them
        const u = this.deps.auth.users.get(s.user);
        if (u) return { kind: 'session', user: s.user, role: u.role, session: s };
        this.deps.auth.sessions.destroy(sid);
      }
    }
    const authz = req.headers.authorization;
    if (authz?.startsWith('Bearer ')) {
      const t = this.deps.auth.users.verifyToken(authz.slice(7).trim());
      if (t) return { kind: 'token', user: `token:${t.label}`, role: 'technician' };
    }
    return null;
  }

  /**
   * Cross-site request forgery: the Origin (when the browser sends one) must be this gateway, and a
   * session's state-changing request must carry its synchronizer token in X-CSRF-Token.
   */
  private checkCsrf(req: IncomingMessage, who: Principal | null, publicRoute: boolean): void {
    const origin = req.headers.origin;
    const host = req.headers.host;
    if (origin !== undefined) {
      let ok = false;
      try {
        ok = !!host && new URL(origin).host === host;
      } catch {
        ok = false;
      }
      if (!ok) throw new HttpError(403, 'cross-site request refused (Origin does not match)');
    } else {
      const site = req.headers['sec-fetch-site'];
      if (site !== undefined && site !== 'same-origin' && site !== 'none')
        throw new HttpError(403, 'cross-site request refused');
    }
    if (publicRoute || who?.kind !== 'session') return;
    const sent = req.headers['x-csrf-token'];
    const want = Buffer.from(who.session!.csrf);
    const got = Buffer.from(typeof sent === 'string' ? sent : '');
    if (got.length !== want.length || !timingSafeEqual(got, want))
      throw new HttpError(403, 'CSRF token missing or wrong; reload the page');
  }

  private fail(res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpError) {
      sendJson(res, err.status, { error: err.message, ...err.extra }, err.headers);
      return;
    }
    // Never a stack trace to the client; the log has the detail.
    this.log?.error({ err: describeError(err) }, 'http handler failed');
    sendJson(res, 500, { error: 'internal error' });
  }
}

/** Where a browser asking for a page must go instead, or null to serve it. */
function pageRedirect(
  access: (typeof PAGES)[string]['access'],
  session: Principal | null,
  hasUsers: boolean,
  path: string,
): string | null {
  if (access === 'setup') return hasUsers ? '/login' : null;
  if (access === 'login') {
    if (!hasUsers) return '/setup';
    return session ? (session.role === 'technician' ? '/console' : '/') : null;
  }
  if (!session) return hasUsers ? `/login${path === '/' ? '' : `?next=${encodeURIComponent(path)}`}` : '/setup';
  if (access === 'technician' && session.role !== 'technician') return '/';
  return null;
}

function clientIp(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

function silentLogger(): Logger {
  const noop = () => {};
  const l = {
    info: noop,
    warn: noop,
    error: noop,
    debug: noop,
    trace: noop,
    fatal: noop,
    child: () => l,
  } as unknown as Logger;
  return l;
}
