import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { AuthContext } from '../auth/index.js';
import { describeError } from '../core/errors.js';
import type { DeviceProfile } from '../core/point.js';
import { History } from '../history/index.js';
import type { Logger } from '../log.js';
import { SESSION_COOKIE } from './api-auth.js';
import { handlePublicParking, PerAddressLimit } from './public-parking.js';
import { HttpError, parseCookies, redirect, sendJson } from './respond.js';
import { type Ctx, HANDLED, type Principal, type Router } from './router.js';
import type { ConfigHost, Deps, HttpCounters, HttpGateway } from './types.js';

/** The panel, the API and the editor proxy: loaded at the first request that is not /healthz. */
type Routes = typeof import('./routes.js');
interface Loaded {
  mod: Routes;
  router: Router;
  deps: Deps;
}

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
  private readonly base: Omit<Deps, 'settings' | 'statics'>;
  private loaded: Loaded | null = null;
  private loading: Promise<Loaded> | null = null;
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
    this.base = {
      gw,
      auth: opts.auth ?? new AuthContext(dataDir, log),
      history: null,
      log,
      configHost: opts.configHost ?? null,
      counters,
      profiles: () => {
        if (gw.profiles) return gw.profiles;
        // only a gateway started without its profiles (tests) reads them here
        this.profilesCache ??= this.readProfiles();
        return this.profilesCache;
      },
      address: () =>
        this.addr
          ? `http://${this.addr.address.includes(':') ? `[${this.addr.address}]` : this.addr.address}:${this.addr.port}`
          : '',
    };
  }

  private profilesLoader: typeof import('../../hardware/profiles.js') | null = null;
  private parkingLimit: PerAddressLimit | undefined;

  private readProfiles(): ReadonlyMap<string, DeviceProfile> {
    const dir = this.gw.config.gateway.profilesDir;
    return this.profilesLoader ? this.profilesLoader.loadProfiles(dir ? [dir] : []) : new Map();
  }

  /** The routes and what they need, loaded once; requests that come meanwhile wait for the same load. */
  private load(): Promise<Loaded> {
    this.loading ??= (async () => {
      const mod = await import('./routes.js');
      if (!this.gw.profiles) this.profilesLoader = await import('../../hardware/profiles.js');
      const { router, deps } = mod.buildRoutes(this.base, resolve(this.gw.config.gateway.dataDir));
      deps.history = this.history;
      this.loaded = { mod, router, deps };
      return this.loaded;
    })();
    return this.loading;
  }

  get auth(): AuthContext {
    return this.base.auth;
  }

  async listen(): Promise<AddressInfo> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.maxHeadersCount = 64;
    // the Node-RED editor's websocket (/red/comms); nothing else upgrades
    server.on('upgrade', (req, socket, head) => {
      const who = this.principal(req);
      this.load().then(
        ({ mod }) => mod.handleEditorUpgrade(req, socket, head, who, this.gw.flows ?? null),
        () => socket.destroy(),
      );
    });
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
        this.base.history = this.history;
        if (this.loaded) this.loaded.deps.history = this.history;
      } catch (err) {
        this.log?.warn({ err: describeError(err) }, 'history rollup not available; charts will be empty');
      }
    }
    this.base.auth.ensureSetupCode(this.base.address());
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
      const c = this.base.counters.requests;
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
        const health = this.gw.health();
        // 503 when degraded: Docker's HEALTHCHECK (fetch → r.ok) and any HTTP probe see it
        sendJson(res, health.status === 'degraded' ? 503 : 200, health);
        return;
      }
      // the public car-park page, when configured: only the free spaces, no login (off by default)
      if (path.startsWith('/public/')) {
        this.parkingLimit ??= new PerAddressLimit(this.gw.config.panel.publicParking.ratePerMinute);
        if (handlePublicParking(req, res, path, this.gw.config, () => this.gw.store.latest(), this.parkingLimit)) {
          routeLabel = '/public/parking';
          return;
        }
      }

      const who = this.principal(req);
      const { mod, router, deps } = this.loaded ?? (await this.load());

      if (mod.isEditorPath(path)) {
        routeLabel = '/red';
        mod.handleEditor(req, res, who, this.gw.flows ?? null);
        return;
      }

      if (method === 'GET' || method === 'HEAD') {
        // The login and setup pages need their files before anyone is logged in; they hold no data.
        if (path.startsWith('/assets/')) {
          routeLabel = '/assets';
          deps.statics.send(req, res, deps.statics.publicFile(path.slice('/assets/'.length)));
          return;
        }
        if (path.startsWith('/vendor/')) {
          routeLabel = '/vendor';
          deps.statics.send(req, res, deps.statics.vendorFile(path.slice('/vendor/'.length)));
          return;
        }
        const page = PAGES[path];
        if (page) {
          routeLabel = path;
          this.page(req, res, page, who, path, deps);
          return;
        }
      }

      const found = router.match(method, path);
      if (!found || found === 'method' || found === 'malformed') {
        // Without credentials nothing is revealed, not even which paths exist.
        if (!who)
          throw new HttpError(401, 'authentication required', {}, { 'www-authenticate': 'Bearer realm="langbiang"' });
        if (found === 'malformed') throw new HttpError(400, 'the path has a malformed percent-escape');
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
    deps: Deps,
  ): void {
    const session = who?.kind === 'session' ? who : null;
    const target = pageRedirect(page.access, session, deps.auth.users.hasUsers(), path);
    if (target) {
      redirect(res, target);
      return;
    }
    deps.statics.send(req, res, deps.statics.publicFile(page.file), { 'cache-control': 'no-store' });
  }

  private principal(req: IncomingMessage): Principal | null {
    const sid = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    if (sid) {
      const s = this.base.auth.sessions.get(sid);
      if (s) {
        // a removed user's session ends with them
        const u = this.base.auth.users.get(s.user);
        if (u) return { kind: 'session', user: s.user, role: u.role, session: s };
        this.base.auth.sessions.destroy(sid);
      }
    }
    const authz = req.headers.authorization;
    if (authz?.startsWith('Bearer ')) {
      const t = this.base.auth.users.verifyToken(authz.slice(7).trim());
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
