import { dirname } from 'node:path';
import { passwordProblem, ROLES, type Role, userNameProblem } from '../auth/index.js';
import { describeError } from '../core/errors.js';
import { logRing } from '../log.js';
import { CONFIRMED_CURSOR, SYNC_CURSOR } from '../store/index.js';
import { HttpError, objectBody, readJson } from './respond.js';
import type { Router } from './router.js';
import type { Deps } from './types.js';

const CONFIG_BODY_LIMIT = 512 * 1024;
const TEST_READ_TIMEOUT_MS = 15_000;
const SECRET_KEY =
  /^(\s*(?:-\s+)?["']?(?:password|secret|token|apiKey|api_key|privateKey)["']?\s*:\s*)(?!\|)(\S.*)$/gim;

/** Secrets are meant to live in files, but a value typed inline must not reach a browser. */
export function redactConfigText(text: string): string {
  return text.replace(SECRET_KEY, (_m, head: string) => `${head}"[redacted]"`);
}

export function registerAdminRoutes(r: Router, deps: Deps): void {
  const { gw, auth } = deps;

  r.get('/api/buses', 'technician', () => gw.busHealth(), { token: true });
  // the software: running release, the previous one kept, a release waiting for confirmation, the
  // last update's outcome (the same as /healthz's `update`; docs/operations.md "Updating gateways")
  r.get('/api/update', 'technician', () => gw.health().update ?? null, { token: true });

  r.post('/api/devices/:id/read', 'technician', async ({ params }) => {
    const dev = gw.config.devices.find((d) => d.id === params.id);
    if (!dev) throw new HttpError(404, `no device "${params.id}"`);
    const profile = deps.profiles().get(dev.profile);
    if (!profile) throw new HttpError(409, `profile ${dev.profile} is not loaded`);
    const bus = gw.buses.get(dev.bus);
    if (!bus) throw new HttpError(409, `bus "${dev.bus}" is not running (see its last error)`);
    const points = dev.points?.length ? profile.points.filter((p) => dev.points!.includes(p.name)) : profile.points;
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      const values = await Promise.race([
        bus.readPoints({ id: dev.id, profile, unit: dev.unit, pins: dev.pins }, points),
        new Promise<never>((_r, reject) => {
          timer = setTimeout(() => reject(new Error('no answer within 15 s')), TEST_READ_TIMEOUT_MS);
        }),
      ]);
      return {
        device: dev.id,
        ms: Date.now() - started,
        values: values.map((v) => ({ ...v, unit: points.find((p) => p.name === v.point)?.unit ?? null })),
      };
    } catch (err) {
      throw new HttpError(502, `test read of ${dev.id} failed: ${describeError(err)}`);
    } finally {
      clearTimeout(timer);
    }
  });

  r.get('/api/config', 'technician', () => {
    const host = deps.configHost;
    let running: ReturnType<NonNullable<typeof host>['running']> = { text: '', origin: 'demo' };
    if (host) {
      try {
        running = host.running();
      } catch (err) {
        throw new HttpError(500, `cannot read the config file: ${describeError(err)}`);
      }
    }
    return {
      file: host?.file ?? null,
      editable: !!host?.file,
      origin: running.origin,
      by: running.by ?? null,
      at: running.at ?? null,
      text: redactConfigText(running.text),
      applying: host?.applying ?? false,
      apply: host?.status() ?? null,
    };
  });

  r.post('/api/config/validate', 'technician', async ({ req }) => {
    const b = objectBody(await readJson(req, CONFIG_BODY_LIMIT));
    if (typeof b.text !== 'string') throw new HttpError(400, 'text (the YAML) is required');
    const file = deps.configHost?.file;
    // the schema and the YAML parser are loaded by the first check, not by every gateway (RSS target)
    const { parseConfigText } = await import('../config/index.js');
    const res = parseConfigText(b.text, { file: 'config', baseDir: file ? dirname(file) : process.cwd() });
    return res.ok ? { ok: true, problems: [], warnings: res.warnings } : { ok: false, problems: res.problems };
  });

  // 202 at once: the change runs on probation for the watch window (minutes); GET …/apply[/:id] follows it.
  r.post('/api/config/apply', 'technician', async ({ req, res, who }) => {
    const b = objectBody(await readJson(req, CONFIG_BODY_LIMIT));
    if (typeof b.text !== 'string') throw new HttpError(400, 'text (the YAML) is required');
    const host = deps.configHost;
    if (!host?.file)
      throw new HttpError(
        409,
        'this gateway runs the built-in demo config, which cannot be changed; start it with --config FILE',
      );
    if (b.text.includes('"[redacted]"'))
      throw new HttpError(
        400,
        'the text still holds "[redacted]" placeholders; put the secret back (or in a file) first',
      );
    // the swap restarts this very server: it waits until this answer has gone out
    const sent = new Promise<void>((resolve) => {
      res.once('finish', resolve);
      res.once('close', resolve);
    });
    const { id } = await host.apply(b.text, who!.user, sent);
    res.statusCode = 202;
    return { accepted: true, id, status: host.status(id) };
  });

  r.get('/api/config/apply', 'technician', () => ({
    applying: deps.configHost?.applying ?? false,
    apply: deps.configHost?.status() ?? null,
  }));

  r.get('/api/config/apply/:id', 'technician', ({ params }) => {
    const s = deps.configHost?.status(params.id!);
    if (!s)
      throw new HttpError(404, `no config change "${params.id}" (the gateway keeps the last 20 since it started)`);
    return s;
  });

  r.get(
    '/api/sync',
    'technician',
    () => {
      const store = gw.store;
      const lastSeq = store.lastSeq();
      const cursor = store.getCursor(SYNC_CURSOR);
      const confirmed = store.getCursor(CONFIRMED_CURSOR);
      let agent: unknown = null;
      try {
        agent = gw.sync?.status() ?? null;
      } catch (err) {
        agent = { error: describeError(err) };
      }
      return {
        configured: !!gw.config.sync,
        url: gw.config.sync?.url ? gw.config.sync.url.replace(/\/\/[^@/]*@/, '//') : null,
        agent,
        outbox: {
          lastSeq,
          cursor,
          backlog: Math.max(0, lastSeq - cursor),
          confirmed,
          unconfirmed: Math.max(0, lastSeq - confirmed),
        },
        gaps: store.stats().gaps,
      };
    },
    { token: true },
  );

  r.get('/api/events', 'technician', ({ url }) => {
    const store = gw.store;
    // without ?after: the newest events, which is what a technician looks for
    const given = url.searchParams.get('after');
    const after = given !== null ? Number(given) || 0 : Math.max(0, store.lastEventId() - 200);
    const gaps = store.gapsAfter(0);
    return { gaps: gaps.slice(-200), events: store.eventsAfter(after, 200) };
  });

  r.get('/api/logs', 'technician', ({ url }) => {
    const n = Math.min(500, Math.max(1, Number(url.searchParams.get('n') ?? 200) || 200));
    return logRing.tail(n).map((line) => {
      try {
        return JSON.parse(line);
      } catch {
        return { msg: line };
      }
    });
  });

  r.get('/api/users', 'technician', () => auth.users.list());

  r.post('/api/users', 'technician', async ({ req, who }) => {
    const b = objectBody(await readJson(req, 4096));
    const bad =
      userNameProblem(b.name) ??
      (ROLES.includes(b.role as Role) ? null : 'role must be farmer or technician') ??
      passwordProblem(b.password);
    if (bad) throw new HttpError(400, bad);
    const replace = b.replace === true;
    if (!replace && auth.users.get(b.name as string)) throw new HttpError(409, `user "${b.name}" already exists`);
    await auth.users.add(b.name as string, b.role as Role, b.password as string, { replace });
    if (replace) auth.sessions.destroyUser(b.name as string);
    deps.log.info({ user: b.name, role: b.role, by: who!.user }, replace ? 'user updated' : 'user added');
    return { name: b.name, role: b.role };
  });

  r.delete('/api/users/:name', 'technician', ({ params, who }) => {
    if (params.name === who!.user) throw new HttpError(409, 'you cannot remove yourself');
    const u = auth.users.get(params.name!);
    if (!u) throw new HttpError(404, `no user "${params.name}"`);
    auth.users.remove(params.name!);
    auth.sessions.destroyUser(params.name!);
    deps.log.info({ user: params.name, by: who!.user }, 'user removed');
    return { ok: true };
  });

  r.get('/api/tokens', 'technician', () => auth.users.listTokens());

  r.post('/api/tokens', 'technician', async ({ req, who }) => {
    const b = objectBody(await readJson(req, 4096));
    const label = typeof b.label === 'string' && b.label.trim() ? b.label.trim() : 'prometheus';
    const t = auth.users.createToken(label, who!.user);
    deps.log.info({ tokenId: t.id, label, by: who!.user }, 'API token created');
    return { id: t.id, label, token: t.token };
  });

  r.delete('/api/tokens/:id', 'technician', ({ params }) => {
    if (!auth.users.revokeToken(params.id!)) throw new HttpError(404, `no token "${params.id}"`);
    return { ok: true };
  });

  r.put('/api/thresholds', 'technician', async ({ req, who }) => {
    const b = await readJson(req, 64 * 1024);
    const list = Array.isArray(b) ? b : objectBody(b).thresholds;
    const saved = deps.settings.replace(list);
    deps.log.info({ count: saved.length, by: who!.user }, 'alert thresholds saved');
    return saved;
  });
}
