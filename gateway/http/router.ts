import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Session } from '../auth/index.js';

export type Access = 'public' | 'user' | 'technician';

export interface Principal {
  kind: 'session' | 'token';
  user: string;
  role: 'farmer' | 'technician';
  session?: Session;
}

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  ip: string;
  who: Principal | null;
}

/** Returned by a handler that wrote the response itself (SSE, files). */
export const HANDLED = Symbol('handled');
export type Handler = (ctx: Ctx) => unknown | Promise<unknown>;

export interface Route {
  method: string;
  pattern: string;
  re: RegExp;
  keys: string[];
  access: Access;
  /** an API token (read-only, for Prometheus and scripts) may call this GET route */
  token: boolean;
  handler: Handler;
}

/** A tiny method + path router: `/api/devices/:id/read`. */
export class Router {
  readonly routes: Route[] = [];

  add(method: string, pattern: string, access: Access, handler: Handler, opts: { token?: boolean } = {}): void {
    const keys: string[] = [];
    const re = new RegExp(
      `^${pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\/:([a-zA-Z]+)/g, (_m, k: string) => {
        keys.push(k);
        return '/([^/]+)';
      })}$`,
    );
    this.routes.push({ method, pattern, re, keys, access, token: opts.token === true && method === 'GET', handler });
  }

  get(p: string, a: Access, h: Handler, o?: { token?: boolean }): void {
    this.add('GET', p, a, h, o);
  }
  post(p: string, a: Access, h: Handler): void {
    this.add('POST', p, a, h);
  }
  put(p: string, a: Access, h: Handler): void {
    this.add('PUT', p, a, h);
  }
  delete(p: string, a: Access, h: Handler): void {
    this.add('DELETE', p, a, h);
  }

  /**
   * The route for method+path, 'method' when only the method is wrong, 'malformed' when a path
   * parameter is not valid percent-encoding, or null.
   */
  match(
    method: string,
    path: string,
  ): { route: Route; params: Record<string, string> } | 'method' | 'malformed' | null {
    let pathMatched = false;
    const m = method === 'HEAD' ? 'GET' : method;
    for (const r of this.routes) {
      const found = r.re.exec(path);
      if (!found) continue;
      pathMatched = true;
      if (r.method !== m) continue;
      const params: Record<string, string> = {};
      let malformed = false;
      r.keys.forEach((k, i) => {
        try {
          params[k] = decodeURIComponent(found[i + 1]!);
        } catch {
          malformed = true;
        }
      });
      // a bad escape is the client's error (400), not a crash (500)
      return malformed ? 'malformed' : { route: r, params };
    }
    return pathMatched ? 'method' : null;
  }
}
