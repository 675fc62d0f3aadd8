import type { IncomingMessage, ServerResponse } from 'node:http';
import { passwordProblem, type Session, userNameProblem } from '../auth/index.js';
import { LangbiangError } from '../core/errors.js';
import { HttpError, objectBody, readJson } from './respond.js';
import type { Router } from './router.js';
import type { Deps } from './types.js';

export const SESSION_COOKIE = 'lb_session';

/** Secure only when the browser reached us over TLS (directly, or through a local reverse proxy). */
export function isTls(req: IncomingMessage): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted) return true;
  const remote = req.socket.remoteAddress ?? '';
  const local = remote === '127.0.0.1' || remote === '::1' || remote === '::ffff:127.0.0.1';
  return local && String(req.headers['x-forwarded-proto'] ?? '').toLowerCase() === 'https';
}

export function sessionCookie(req: IncomingMessage, value: string, maxAgeS: number): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${isTls(req) ? '; Secure' : ''}`;
}

function startSession(deps: Deps, req: IncomingMessage, res: ServerResponse, user: string, role: Session['role']) {
  const s = deps.auth.sessions.create(user, role);
  res.setHeader('set-cookie', sessionCookie(req, s.id, 7 * 86_400));
  return { user: s.user, role: s.role, csrf: s.csrf };
}

/** Too many password checks at once: 503 with a retry hint, not a 500. */
function busyIs503(err: unknown): never {
  if (err instanceof LangbiangError && err.code === 'BUSY')
    throw new HttpError(503, err.message, { retryAfterS: 1 }, { 'retry-after': '1' });
  throw err;
}

export function registerAuthRoutes(r: Router, deps: Deps): void {
  const { auth, log } = deps;

  r.get('/api/setup', 'public', () => {
    const needed = !auth.users.hasUsers();
    if (needed) auth.ensureSetupCode(deps.address());
    return { needed };
  });

  r.post('/api/setup', 'public', async ({ req, res, ip }) => {
    const b = objectBody(await readJson(req));
    // the code check below is synchronous: counting the failure after it is counting at the start
    const wait = auth.limiter.retryAfter(ip, '#setup');
    if (wait > 0)
      throw new HttpError(
        429,
        `too many attempts; try again in ${wait} s`,
        { retryAfterS: wait },
        { 'retry-after': String(wait) },
      );
    if (auth.users.hasUsers()) throw new HttpError(409, 'the gateway is already set up; log in instead');
    const bad = userNameProblem(b.user) ?? passwordProblem(b.password);
    if (bad) throw new HttpError(400, bad);
    if (!auth.consumeSetupCode(b.code)) {
      auth.limiter.failed(ip, '#setup');
      // an expired code is replaced (and logged) so the technician can read the new one
      auth.ensureSetupCode(deps.address());
      throw new HttpError(
        403,
        'the setup code is wrong or has expired; read the current one from the log, or use the one printed with the provisioning bundle',
      );
    }
    await auth.users.add(b.user as string, 'technician', b.password as string).catch(busyIs503);
    log.info({ user: b.user, ip }, 'first technician created with the setup code');
    return startSession(deps, req, res, b.user as string, 'technician');
  });

  r.post('/api/login', 'public', async ({ req, res, ip }) => {
    const b = objectBody(await readJson(req, 4096));
    const user = typeof b.user === 'string' ? b.user.slice(0, 64) : '';
    const wait = auth.limiter.attempt(ip, user);
    if (wait > 0) {
      throw new HttpError(
        429,
        `too many failed logins; try again in ${wait} s`,
        { retryAfterS: wait },
        { 'retry-after': String(wait) },
      );
    }
    const found = await auth.users.verify(user, b.password).catch(busyIs503);
    if (!found) {
      deps.counters.loginFailures++;
      log.warn({ user, ip }, 'failed login');
      throw new HttpError(401, 'wrong user name or password');
    }
    auth.limiter.succeeded(ip, user);
    log.info({ user, ip }, 'login');
    return startSession(deps, req, res, found.name, found.role);
  });

  r.post('/api/logout', 'user', ({ req, res, who }) => {
    if (who?.session) auth.sessions.destroy(who.session.id);
    res.setHeader('set-cookie', sessionCookie(req, '', 0));
    return { ok: true };
  });

  r.get('/api/session', 'user', ({ who }) => ({
    user: who!.user,
    role: who!.role,
    csrf: who!.session?.csrf ?? null,
  }));

  r.post('/api/password', 'user', async ({ req, ip, who }) => {
    const b = objectBody(await readJson(req, 4096));
    if (!who?.session) throw new HttpError(403, 'log in with a password to change it');
    const wait = auth.limiter.attempt(ip, who.user);
    if (wait > 0) throw new HttpError(429, `too many attempts; try again in ${wait} s`, { retryAfterS: wait });
    if (!(await auth.users.verify(who.user, b.current).catch(busyIs503))) {
      throw new HttpError(403, 'the current password is wrong');
    }
    auth.limiter.succeeded(ip, who.user);
    const bad = passwordProblem(b.password);
    if (bad) throw new HttpError(400, bad);
    await auth.users.add(who.user, who.role, b.password as string, { replace: true }).catch(busyIs503);
    auth.sessions.destroyUser(who.user, who.session.id);
    return { ok: true };
  });
}
