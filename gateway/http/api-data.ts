import { randomUUID } from 'node:crypto';
import type { CommandResult, CommandResultCode } from '../core/command.js';
import type { DeviceHealth } from '../core/driver.js';
import type { StoredReading } from '../core/reading.js';
import { parseTimeArg } from '../time-arg.js';
import { HttpError, objectBody, readJson, SECURITY_HEADERS } from './respond.js';
import { HANDLED, type Router } from './router.js';
import type { Deps } from './types.js';

const MAX_SSE_CLIENTS = 32;
const SSE_PING_MS = 20_000;
const MAX_RANGE_MS = 400 * 86_400_000;

function healthByDevice(deps: Deps): Map<string, DeviceHealth & { bus: string }> {
  const out = new Map<string, DeviceHealth & { bus: string }>();
  for (const b of deps.gw.busHealth()) for (const d of b.devices) out.set(d.device, { ...d, bus: b.bus });
  return out;
}

function latestMap(deps: Deps): Map<string, StoredReading> {
  const m = new Map<string, StoredReading>();
  for (const r of deps.gw.store.latest()) m.set(`${r.device}\u0000${r.point}`, r);
  return m;
}

/** Devices with their config, health and points; the console and the panel both start here. */
export function devicesView(deps: Deps) {
  const profiles = deps.profiles();
  const health = healthByDevice(deps);
  return deps.gw.config.devices.map((d) => {
    const profile = profiles.get(d.profile);
    const points = (profile?.points ?? []).filter((p) => !d.points?.length || d.points.includes(p.name));
    return {
      id: d.id,
      name: d.name ?? null,
      zone: d.zone ?? null,
      profile: d.profile,
      model: profile ? `${profile.manufacturer} ${profile.model}` : null,
      bus: d.bus,
      unit: d.unit ?? null,
      intervalMs: d.interval,
      enabled: d.enabled !== false,
      health: health.get(d.id) ?? null,
      points: points.map((p) => ({
        name: p.name,
        unit: p.unit ?? null,
        writable: p.writable,
        type: p.type,
        min: p.min ?? null,
        max: p.max ?? null,
        description: p.description ?? null,
      })),
    };
  });
}

function num(v: string | null, what: string): number | undefined {
  if (v === null || v === '') return undefined;
  if (/^-?\d+$/.test(v)) return Number(v);
  // the same times the CLI takes: ISO 8601, or relative to now like -5m, -24h
  try {
    return parseTimeArg(v);
  } catch {
    throw new HttpError(400, `${what} must be epoch ms, an ISO 8601 time or relative like -5m or -24h`);
  }
}

export function isIrrigation(deps: Deps, device: string, point: string): boolean {
  return (deps.gw.config.panel.irrigation ?? []).some((r) => r.device === device && r.point === point);
}

/** The HTTP status of each command result code (core/command.ts): every code has one. */
const RESULT_STATUS: Record<CommandResultCode, number> = {
  COMMAND_INVALID: 400,
  OUT_OF_RANGE: 400,
  NOT_WRITABLE: 400,
  UNKNOWN_DEVICE: 404,
  UNKNOWN_POINT: 404,
  FORBIDDEN: 403,
  EXPIRED: 408,
  BUSY: 429,
  DEVICE_ERROR: 502,
  // from MQTT only (an unsigned or badly signed city message); never for a logged-in user
  UNTRUSTED: 403,
  // the same command id with other content (ids are scoped by source)
  CONFLICT: 409,
};

export function registerDataRoutes(r: Router, deps: Deps): void {
  r.get('/api/devices', 'user', () => devicesView(deps), { token: true });

  r.get(
    '/api/devices/:id',
    'user',
    ({ params }) => {
      const d = devicesView(deps).find((x) => x.id === params.id);
      if (!d) throw new HttpError(404, `no device "${params.id}"`);
      return d;
    },
    { token: true },
  );

  r.get(
    '/api/latest',
    'user',
    ({ url }) => {
      const device = url.searchParams.get('device');
      return deps.gw.store
        .latest()
        .filter((x) => !device || x.device === device)
        .map((x) => ({
          device: x.device,
          point: x.point,
          value: x.value,
          unit: x.unit ?? null,
          quality: x.quality,
          ts: x.ts,
          seq: x.seq,
        }));
    },
    { token: true },
  );

  r.get(
    '/api/readings',
    'user',
    ({ url }) => {
      const q = url.searchParams;
      const device = q.get('device');
      const point = q.get('point');
      if (!device || !point) throw new HttpError(400, 'device and point are required');
      const now = Date.now();
      const to = num(q.get('to'), 'to') ?? now;
      const from = num(q.get('from'), 'from') ?? to - 86_400_000;
      if (!(from < to)) throw new HttpError(400, 'from must be before to');
      if (to - from > MAX_RANGE_MS) throw new HttpError(400, 'the range is at most 400 days');
      const pts = Number(q.get('points') ?? 500);
      if (!Number.isInteger(pts) || pts < 10 || pts > 2000)
        throw new HttpError(400, 'points must be a whole number 10–2000');
      if (!deps.history) throw new HttpError(503, 'history is not available');
      const unit = deps
        .profiles()
        .get(deps.gw.config.devices.find((d) => d.id === device)?.profile ?? '')
        ?.points.find((p) => p.name === point)?.unit;
      return { ...deps.history.query({ device, point, from, to, maxPoints: pts }), unit: unit ?? null };
    },
    { token: true },
  );

  r.get('/api/panel', 'user', () => {
    const c = deps.gw.config;
    const latest = latestMap(deps);
    const devices = devicesView(deps).filter((d) => d.enabled);
    const thresholds = deps.settings.list();
    const irrigationKeys = new Set((c.panel.irrigation ?? []).map((x) => `${x.device}\u0000${x.point}`));
    const zones = new Map<string, unknown[]>();
    for (const d of devices) {
      const points = d.points
        // writable points are settings (calibration offsets, levels), not what the farmer looks at
        .filter((p) => !irrigationKeys.has(`${d.id}\u0000${p.name}`) && !p.writable)
        .map((p) => {
          const l = latest.get(`${d.id}\u0000${p.name}`);
          const th = thresholds.find((t) => t.device === d.id && t.point === p.name);
          let alert: 'below' | 'above' | null = null;
          if (th && l && l.quality === 'good' && typeof l.value === 'number') {
            if (th.below !== undefined && l.value < th.below) alert = 'below';
            else if (th.above !== undefined && l.value > th.above) alert = 'above';
          }
          return {
            name: p.name,
            unit: p.unit,
            value: l?.value ?? null,
            quality: l?.quality ?? null,
            ts: l?.ts ?? null,
            alert,
            threshold: th ?? null,
          };
        });
      if (points.length === 0) continue;
      const key = d.zone ?? '';
      if (!zones.has(key)) zones.set(key, []);
      zones.get(key)!.push({
        id: d.id,
        name: d.name,
        profile: d.profile,
        intervalMs: d.intervalMs,
        state: d.health?.state ?? null,
        points,
      });
    }
    return {
      gateway: { id: c.gateway.id, name: c.gateway.name ?? c.gateway.id, timezone: c.gateway.timezone },
      now: Date.now(),
      zones: [...zones].map(([zone, ds]) => ({ zone: zone || null, devices: ds })),
      irrigation: (c.panel.irrigation ?? []).map((x) => {
        const l = latest.get(`${x.device}\u0000${x.point}`);
        const dev = devices.find((d) => d.id === x.device);
        return {
          device: x.device,
          point: x.point,
          label: x.label ?? `${x.device} ${x.point}`,
          zone: dev?.zone ?? null,
          value: l?.value ?? null,
          quality: l?.quality ?? null,
          ts: l?.ts ?? null,
          state: dev?.health?.state ?? null,
        };
      }),
      commandsAvailable: !!deps.gw.commands,
      // local alarms that need attention (active or sensor fault): the banner on top of the panel
      alarms: (deps.gw.alarms?.status() ?? []).filter((a) => a.state === 'active' || a.fault),
    };
  });

  r.get('/api/thresholds', 'user', () => deps.settings.list());
  r.get('/api/alarms', 'user', () => ({ alarms: deps.gw.alarms?.status() ?? [] }), { token: true });

  r.post('/api/commands', 'user', async ({ req, res, who }) => {
    const b = objectBody(await readJson(req, 4096));
    const { device, point, value } = b;
    if (typeof device !== 'string' || typeof point !== 'string')
      throw new HttpError(400, 'device and point are required');
    if (typeof value !== 'number' && typeof value !== 'boolean' && typeof value !== 'string')
      throw new HttpError(400, 'value must be a number, true/false or a word like on/off');
    // The farmer role switches irrigation only, checked here on the server whatever the page shows.
    if (who!.role !== 'technician' && !isIrrigation(deps, device, point))
      throw new HttpError(403, `your role may only switch the irrigation relays; "${device}.${point}" is not one`);
    const router = deps.gw.commands;
    if (!router) throw new HttpError(503, 'the command router is not running');
    const id = typeof b.id === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(b.id) ? b.id : `http-${randomUUID()}`;
    const result: CommandResult = await router.execute({
      id,
      device,
      point,
      value,
      source: 'http',
      actor: who!.user,
      deadline: Date.now() + 15_000,
    });
    deps.log.info(
      { user: who!.user, device, point, value, ok: result.ok, code: result.code },
      'command from the panel',
    );
    res.statusCode = result.ok ? 200 : result.code ? (RESULT_STATUS[result.code] ?? 500) : 500;
    return result;
  });

  r.get('/api/live', 'user', ({ req, res, who }) => {
    if (deps.counters.sseClients >= MAX_SSE_CLIENTS) throw new HttpError(503, 'too many live connections');
    deps.counters.sseClients++;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 3000\n\n');
    const send = (event: string, data: unknown) => {
      // A phone that stopped reading must not make the gateway buffer without bound.
      if (res.writableLength > 1 << 20) return done();
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const offReadings = deps.gw.events.on('readings', (rs) =>
      send(
        'readings',
        rs.map((x) => [x.device, x.point, x.value, x.quality, x.ts]),
      ),
    );
    const offHealth = deps.gw.events.on('device-health', (h) => send('health', { device: h.device, state: h.state }));
    const offAlarm = deps.gw.events.on('alarm', (a) => send('alarm', a));
    const sessionId = who?.session?.id;
    const ping = setInterval(() => {
      if (sessionId && !deps.auth.sessions.get(sessionId)) return done();
      res.write(': ping\n\n');
    }, SSE_PING_MS);
    ping.unref();
    let closed = false;
    function done() {
      if (closed) return;
      closed = true;
      deps.counters.sseClients--;
      clearInterval(ping);
      offReadings();
      offHealth();
      offAlarm();
      res.end();
    }
    req.on('close', done);
    return HANDLED;
  });
}
