// biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the server answered
type Json = any;

/**
 * A cookie-keeping HTTP client for the gateway's API, as a browser would use it: session cookie,
 * CSRF token echoed in X-CSRF-Token, same-origin Origin header on writes.
 */
export class ApiClient {
  cookie = '';
  csrf = '';

  constructor(readonly base: string) {}

  async req(
    method: string,
    path: string,
    opts: {
      body?: unknown;
      raw?: string;
      headers?: Record<string, string>;
      csrf?: boolean;
      origin?: string | null;
    } = {},
  ): Promise<{ status: number; body: Json; headers: Headers; text: string }> {
    const headers: Record<string, string> = { ...opts.headers };
    if (this.cookie) headers.cookie = this.cookie;
    if (opts.body !== undefined || opts.raw !== undefined) headers['content-type'] ??= 'application/json';
    if (method !== 'GET' && opts.csrf !== false && this.csrf) headers['x-csrf-token'] = this.csrf;
    if (method !== 'GET' && opts.origin !== null) headers.origin = opts.origin ?? this.base;
    const res = await fetch(this.base + path, {
      method,
      headers,
      body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
      redirect: 'manual',
    });
    const setCookie = res.headers.get('set-cookie');
    if (setCookie) {
      const m = /lb_session=([^;]*)/.exec(setCookie);
      if (m) this.cookie = m[1] ? `lb_session=${m[1]}` : '';
    }
    const text = await res.text();
    let body: Json = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    if (body && typeof body === 'object' && typeof body.csrf === 'string') this.csrf = body.csrf;
    return { status: res.status, body, headers: res.headers, text };
  }

  get(path: string, headers?: Record<string, string>) {
    return this.req('GET', path, { headers });
  }
  post(path: string, body: unknown = {}) {
    return this.req('POST', path, { body });
  }
  async login(user: string, password: string) {
    const r = await this.post('/api/login', { user, password });
    if (r.status !== 200) throw new Error(`login ${user}: ${r.status} ${r.text}`);
    return r;
  }
}

/** The setup code the gateway wrote to its log (the newest one). */
export function setupCodeFrom(log: string): string {
  const all = [...log.matchAll(/FIRST-RUN SETUP CODE: ([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})/g)];
  const last = all.at(-1);
  if (!last) throw new Error(`no setup code in the log:\n${log.slice(-2000)}`);
  return last[1]!;
}
