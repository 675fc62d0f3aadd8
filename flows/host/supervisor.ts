import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { CommandExecutor, CommandRequest, CommandResult } from '../../gateway/core/command.js';
import { describeError } from '../../gateway/core/errors.js';
import type { EventBus } from '../../gateway/core/events.js';
import type { Logger } from '../../gateway/core/log.js';
import type { EventOutbox, EventRecorder, GatewayEventRecord } from '../../gateway/core/outbox.js';
import type { StoredReading } from '../../gateway/core/reading.js';
import { flowChildEnv } from './flow-env.js';
import { FLOWS_PATHS } from './paths.js';
import type { FlowCommand, FromChild, HistoryQuery, RunnerInit, ToChild } from './protocol.js';

/** The host logs through the project's one Logger (gateway/core/log.ts). */
export type FlowsLog = Logger;

export interface FlowsSupervisorOptions {
  /** the gateway's data dir; Node-RED's userDir (flows, credentials, context) is `<dataDir>/flows` */
  dataDir: string;
  gatewayId: string;
  /** from the gateway's secret store; encrypts flows_cred.json */
  credentialSecret: string;
  log: FlowsLog;
  events: EventBus;
  /** the command router; without it every command from a flow is refused */
  commands?: CommandExecutor;
  history: (q: HistoryQuery) => StoredReading[];
  recorder?: EventRecorder;
  /** where the langbiang event node reads gap/alarm/command events from */
  eventSource?: EventOutbox;
  /** V8 old-space cap of the child, MiB (--max-old-space-size) */
  maxOldSpaceMb: number;
  /** the child is killed when its RSS passes this (Buffers live outside the V8 heap cap) */
  maxRssBytes: number;
  heartbeatIntervalMs?: number;
  /** no heartbeat answer for this long → the child's event loop is blocked → SIGKILL */
  heartbeatTimeoutMs: number;
  /** from fork to 'ready' (a Pi needs tens of seconds to load Node-RED) */
  startTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** crashLoopCrashes crashes within crashLoopWindowMs → no restarts for crashLoopCooldownMs */
  crashLoopCrashes: number;
  crashLoopWindowMs: number;
  crashLoopCooldownMs: number;
  /** a child that stayed up this long is healthy again: the backoff starts over */
  stableAfterMs?: number;
  /**
   * Writes made whenever the runtime goes away (crash, kill, gateway stop): the gateway cannot
   * know which outputs a flow left on, so the technician names the ones that must fail safe
   * (a valve closed) instead of waiting for the next start.
   */
  failsafe?: { device: string; point: string; value: number | boolean | string }[];
  /** environment variables of the flows (the default flows' parameters) */
  env?: Record<string, string>;
  /**
   * Run the child as this user and group (the gateway must be root or hold CAP_SETUID and
   * CAP_SETGID): the flows then cannot read what the gateway keeps to itself in the data directory.
   */
  runAs?: { uid: number; gid: number };
  /** load the core nodes that run programs or touch files (exec, file, file in, watch) */
  allowUnsafeNodes?: boolean;
  logLevel?: string;
  /** for tests: another runner script, nodes dir or default flows */
  runnerPath?: string;
  nodesDir?: string;
  defaultFlowsFile?: string;
}

export type FlowsState = 'stopped' | 'starting' | 'running' | 'backoff' | 'crash-loop';
export type ExitReason = 'exit' | 'heartbeat' | 'memory' | 'start-timeout';

export interface FlowsStatus {
  state: FlowsState;
  pid: number | null;
  /** times the runtime was started again after it died or was killed */
  restarts: number;
  lastExit: { reason: ExitReason; code: number | null; signal: string | null; at: string } | null;
  rssBytes: number | null;
  /** readings not forwarded because the child did not keep up */
  readingsDropped: number;
  nextStartAt: string | null;
}

export const TOKEN_HEADER = 'x-langbiang-editor';
const MAX_IN_FLIGHT = 64;
const MAX_HISTORY_ROWS = 5000;
const EVENT_POLL_MS = 1000;
const STOP_GRACE_MS = 4000;

/**
 * Runs Node-RED in its own process and keeps it alive without ever letting it hurt the gateway:
 * a blocked event loop (no heartbeat), a heap or RSS past its cap, a crash — each ends in a
 * SIGKILL or an exit, a `flows` event, and a restart after an exponential backoff. Too many
 * crashes in a window stop the restarts for a cool-down (a broken flow must not eat the CPU the
 * poll loop needs). Nothing the child sends is trusted beyond its shape.
 */
export class FlowsSupervisor {
  private child: ChildProcess | null = null;
  private state: FlowsState = 'stopped';
  private stopping = false;
  private ready = false;
  private port: number | null = null;
  private proxyToken = '';
  private spawnedAt = 0;
  private readyAt = 0;
  private lastPongAt = 0;
  private pingN = 0;
  private rss: number | null = null;
  private killReason: ExitReason | null = null;
  private restarts = 0;
  private consecutiveFailures = 0;
  private crashTimes: number[] = [];
  private lastExit: FlowsStatus['lastExit'] = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private nextStartAt: number | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private eventPoll: NodeJS.Timeout | null = null;
  private eventCursor = 0;
  private inFlight = 0;
  private dropped = 0;
  private wantDevices: Set<string> | null | undefined = undefined; // undefined = nothing, null = all
  private wantEvents = false;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly readyWaiters: (() => void)[] = [];

  constructor(private readonly opts: FlowsSupervisorOptions) {}

  start(): void {
    if (this.state !== 'stopped') return;
    this.stopping = false;
    this.unsubscribe.push(this.opts.events.on('readings', (rs) => this.forwardReadings(rs)));
    if (!this.opts.eventSource) {
      // without an events table, gaps still reach the event node straight from the bus
      this.unsubscribe.push(
        this.opts.events.on('gap', (gap) =>
          this.forwardEvents([{ id: gap.id, kind: 'gap', ts: gap.ts, data: { ...gap } }]),
        ),
      );
    }
    this.heartbeat = setInterval(() => this.beat(), this.opts.heartbeatIntervalMs ?? 1000);
    this.heartbeat.unref();
    this.spawn();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.state = 'stopped';
    for (const u of this.unsubscribe.splice(0)) u();
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.eventPoll) clearInterval(this.eventPoll);
    this.heartbeat = this.restartTimer = this.eventPoll = null;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
    await this.failSafe('stop');
  }

  private async failSafe(why: string): Promise<void> {
    const o = this.opts;
    if (!o.failsafe?.length || !o.commands) return;
    await Promise.all(
      o.failsafe.map(async (f) => {
        const r = await o
          .commands!.execute({
            id: `flows-failsafe-${randomBytes(8).toString('hex')}`,
            device: f.device,
            point: f.point,
            value: f.value,
            source: 'flows',
            actor: `flows supervisor (${why})`,
          })
          .catch((err) => ({ ok: false, message: describeError(err) }));
        if (!r.ok) o.log.warn({ device: f.device, point: f.point, err: r.message }, 'fail-safe write failed');
      }),
    );
  }

  status(): FlowsStatus {
    return {
      state: this.state,
      pid: this.child?.pid ?? null,
      restarts: this.restarts,
      lastExit: this.lastExit,
      rssBytes: this.rss,
      readingsDropped: this.dropped,
      nextStartAt: this.nextStartAt ? new Date(this.nextStartAt).toISOString() : null,
    };
  }

  /** Where the editor listens (127.0.0.1 only), or null while the runtime is not up. */
  editorTarget(): { host: string; port: number; header: string; token: (user: string) => string } | null {
    if (!this.ready || this.port === null) return null;
    const secret = this.proxyToken;
    return { host: '127.0.0.1', port: this.port, header: TOKEN_HEADER, token: (user) => `${secret} ${user}` };
  }

  /** Resolves when a runtime is up (tests, the start-up log). */
  whenReady(timeoutMs: number): Promise<boolean> {
    if (this.ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.readyWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  // ---- the child ------------------------------------------------------------------------------

  private spawn(): void {
    const o = this.opts;
    const runner = o.runnerPath ?? FLOWS_PATHS.runner;
    this.nextStartAt = null;
    if (!existsSync(runner)) {
      o.log.error({ runner }, 'node-red runner not found (run npm run build); flows are not started');
      this.state = 'stopped';
      return;
    }
    this.state = 'starting';
    this.ready = false;
    this.port = null;
    this.rss = null;
    this.killReason = null;
    this.wantDevices = undefined;
    this.wantEvents = false;
    this.inFlight = 0;
    this.proxyToken = randomBytes(24).toString('base64url');
    this.spawnedAt = Date.now();
    this.lastPongAt = Date.now();

    const child = fork(runner, [], {
      execArgv: [`--max-old-space-size=${Math.max(16, Math.round(o.maxOldSpaceMb))}`],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: flowChildEnv(o.env ?? {}),
      serialization: 'json',
      ...(o.runAs ? { uid: o.runAs.uid, gid: o.runAs.gid } : {}),
    });
    this.child = child;
    child.on('error', (err) => o.log.error({ err: describeError(err) }, 'node-red child error'));
    child.on('message', (m) => this.onMessage(child, m as FromChild));
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
    this.pipeLogs(child);

    const init: RunnerInit = {
      t: 'init',
      userDir: join(o.dataDir, 'flows'),
      flowFile: 'flows.json',
      credentialSecret: o.credentialSecret,
      proxyToken: this.proxyToken,
      tokenHeader: TOKEN_HEADER,
      host: '127.0.0.1',
      port: 0,
      httpAdminRoot: '/red/',
      nodesDir: o.nodesDir ?? FLOWS_PATHS.nodesDir,
      defaultFlowsFile: o.defaultFlowsFile ?? FLOWS_PATHS.defaultFlows,
      logLevel: o.logLevel ?? 'info',
      gatewayId: o.gatewayId,
      allowUnsafeNodes: o.allowUnsafeNodes === true,
    };
    this.send(child, init);
    o.log.info({ childPid: child.pid, maxOldSpaceMb: o.maxOldSpaceMb }, 'node-red starting');
  }

  private onMessage(child: ChildProcess, m: FromChild): void {
    if (child !== this.child || !m || typeof m !== 'object') return;
    switch (m.t) {
      case 'pong':
        this.lastPongAt = Date.now();
        if (typeof m.rss === 'number') this.rss = m.rss;
        if (this.rss !== null && this.rss > this.opts.maxRssBytes) this.kill('memory');
        break;
      case 'ready':
        this.ready = true;
        this.readyAt = Date.now();
        this.port = typeof m.port === 'number' ? m.port : null;
        this.state = 'running';
        this.lastPongAt = Date.now();
        this.eventCursor = this.opts.eventSource?.lastEventId() ?? 0;
        this.opts.log.info(
          { childPid: child.pid, startMs: this.readyAt - this.spawnedAt },
          'node-red running; editor at /red/',
        );
        for (const w of this.readyWaiters.splice(0)) w();
        break;
      case 'subscribe':
        this.wantDevices = m.devices === null ? null : new Set(Array.isArray(m.devices) ? m.devices.map(String) : []);
        this.wantEvents = m.events === true;
        this.syncEventPoll();
        break;
      case 'command':
        void this.runCommand(child, m.id, m.command);
        break;
      case 'history':
        this.runHistory(child, m.id, m.query);
        break;
      case 'fatal':
        this.opts.log.error({ err: String(m.msg).slice(0, 500) }, 'node-red could not start');
        break;
    }
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child) return;
    this.child = null;
    this.ready = false;
    this.port = null;
    if (this.eventPoll) clearInterval(this.eventPoll);
    this.eventPoll = null;
    if (this.stopping) return;

    const reason: ExitReason = this.killReason ?? 'exit';
    const now = Date.now();
    this.lastExit = { reason, code, signal, at: new Date(now).toISOString() };
    const ranStably = this.readyAt >= this.spawnedAt && now - this.readyAt >= (this.opts.stableAfterMs ?? 60_000);
    this.consecutiveFailures = ranStably ? 1 : this.consecutiveFailures + 1;
    this.crashTimes = this.crashTimes.filter((t) => now - t < this.opts.crashLoopWindowMs);
    this.crashTimes.push(now);

    const o = this.opts;
    void this.failSafe(reason);
    if (this.crashTimes.length >= o.crashLoopCrashes) {
      this.crashTimes = [];
      this.consecutiveFailures = 0;
      this.state = 'crash-loop';
      o.log.error(
        {
          reason,
          code,
          signal,
          crashes: o.crashLoopCrashes,
          windowMs: o.crashLoopWindowMs,
          cooldownMs: o.crashLoopCooldownMs,
        },
        'node-red keeps crashing; not restarting it for the cool-down (polling and storing go on)',
      );
      this.record({
        state: 'crash-loop',
        reason,
        code,
        signal,
        crashes: o.crashLoopCrashes,
        windowMs: o.crashLoopWindowMs,
        cooldownMs: o.crashLoopCooldownMs,
      });
      this.scheduleRestart(o.crashLoopCooldownMs);
      return;
    }
    const delay = Math.min(o.backoffMaxMs, o.backoffInitialMs * 2 ** Math.max(0, this.consecutiveFailures - 1));
    this.state = 'backoff';
    o.log.warn({ reason, code, signal, restartInMs: delay }, 'node-red stopped; restarting it');
    this.record({ state: 'restarting', reason, code, signal, restartInMs: delay, restarts: this.restarts + 1 });
    this.scheduleRestart(delay);
  }

  private scheduleRestart(delayMs: number): void {
    this.nextStartAt = Date.now() + delayMs;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.stopping) return;
      this.restarts++;
      this.spawn();
    }, delayMs);
    this.restartTimer.unref();
  }

  private kill(reason: ExitReason): void {
    const child = this.child;
    if (!child || this.killReason) return;
    this.killReason = reason;
    const o = this.opts;
    const detail =
      reason === 'heartbeat'
        ? { silentMs: Date.now() - this.lastPongAt }
        : reason === 'memory'
          ? { rssBytes: this.rss, maxRssBytes: o.maxRssBytes }
          : { startTimeoutMs: o.startTimeoutMs };
    o.log.error({ childPid: child.pid, reason, ...detail }, 'killing node-red');
    child.kill('SIGKILL');
  }

  private beat(): void {
    const child = this.child;
    if (!child || this.killReason) return;
    const now = Date.now();
    if (!this.ready) {
      if (now - this.spawnedAt > this.opts.startTimeoutMs) this.kill('start-timeout');
    } else if (now - this.lastPongAt > this.opts.heartbeatTimeoutMs) {
      this.kill('heartbeat');
      return;
    }
    this.send(child, { t: 'ping', n: ++this.pingN });
  }

  private record(data: Record<string, unknown>): void {
    try {
      this.opts.recorder?.recordEvent('flows', data);
    } catch (err) {
      this.opts.log.warn({ err: describeError(err) }, 'flows event not recorded');
    }
  }

  // ---- IPC ------------------------------------------------------------------------------------

  /**
   * Never blocks and never queues without bound: a child that stopped reading (blocked loop)
   * costs the gateway at most MAX_IN_FLIGHT messages until the heartbeat kills it.
   */
  private send(child: ChildProcess, msg: ToChild, droppable = false): boolean {
    if (!child.connected) return false;
    if (droppable && this.inFlight >= MAX_IN_FLIGHT) return false;
    this.inFlight++;
    try {
      child.send(msg, (err) => {
        this.inFlight--;
        if (err) this.opts.log.debug({ err: describeError(err) }, 'ipc send failed');
      });
      return true;
    } catch {
      this.inFlight--;
      return false;
    }
  }

  private forwardReadings(readings: StoredReading[]): void {
    const child = this.child;
    if (!child || !this.ready || this.wantDevices === undefined) return;
    const want = this.wantDevices;
    const out = want === null ? readings : readings.filter((r) => want.has(r.device));
    if (!out.length) return;
    if (!this.send(child, { t: 'readings', readings: out }, true)) this.dropped += out.length;
  }

  private forwardEvents(events: GatewayEventRecord[]): void {
    const child = this.child;
    if (!child || !this.ready || !this.wantEvents || !events.length) return;
    this.send(child, { t: 'events', events }, true);
  }

  private syncEventPoll(): void {
    const src = this.opts.eventSource;
    if (!src) return;
    if (this.wantEvents && !this.eventPoll) {
      this.eventPoll = setInterval(() => {
        try {
          const events = src.eventsAfter(this.eventCursor, 200);
          if (!events.length) return;
          this.eventCursor = events[events.length - 1]!.id;
          this.forwardEvents(events);
        } catch (err) {
          this.opts.log.debug({ err: describeError(err) }, 'events not read for flows');
        }
      }, EVENT_POLL_MS);
      this.eventPoll.unref();
    } else if (!this.wantEvents && this.eventPoll) {
      clearInterval(this.eventPoll);
      this.eventPoll = null;
    }
  }

  private async runCommand(child: ChildProcess, id: number, c: FlowCommand): Promise<void> {
    const reply = (result: CommandResult) => this.send(child, { t: 'reply', id, ok: true, result });
    const cmdId = typeof c?.id === 'string' && c.id ? c.id.slice(0, 200) : `flows-${randomBytes(8).toString('hex')}`;
    const refuse = (message: string, code: CommandResult['code'] = 'COMMAND_INVALID') =>
      reply({ id: cmdId, ok: false, code, message, ts: Date.now() });
    if (
      !c ||
      typeof c.device !== 'string' ||
      typeof c.point !== 'string' ||
      !['number', 'boolean', 'string'].includes(typeof c.value)
    )
      return void refuse('a command needs device, point and value');
    if (!this.opts.commands) return void refuse('this gateway has no command router', 'FORBIDDEN');
    const req: CommandRequest = {
      id: cmdId,
      device: c.device,
      point: c.point,
      value: c.value,
      source: 'flows',
      actor: typeof c.actor === 'string' ? c.actor.slice(0, 200) : 'flows',
    };
    if (typeof c.deadline === 'number') req.deadline = c.deadline;
    try {
      reply(await this.opts.commands.execute(req));
    } catch (err) {
      refuse(describeError(err), 'DEVICE_ERROR');
    }
  }

  private runHistory(child: ChildProcess, id: number, q: HistoryQuery): void {
    try {
      const query: HistoryQuery = {};
      if (typeof q?.device === 'string') query.device = q.device;
      if (typeof q?.point === 'string') query.point = q.point;
      if (typeof q?.from === 'number') query.from = q.from;
      if (typeof q?.to === 'number') query.to = q.to;
      if (q?.order === 'desc') query.order = 'desc';
      query.limit = Math.min(MAX_HISTORY_ROWS, typeof q?.limit === 'number' && q.limit > 0 ? q.limit : 1000);
      this.send(child, { t: 'reply', id, ok: true, result: this.opts.history(query) });
    } catch (err) {
      this.send(child, { t: 'reply', id, ok: false, error: describeError(err) });
    }
  }

  /** Node-RED's JSON log lines (and anything on stderr, e.g. V8's out-of-memory report) into our log. */
  private pipeLogs(child: ChildProcess): void {
    const log = this.opts.log;
    const levels = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
    if (child.stdout) {
      createInterface({ input: child.stdout }).on('line', (line) => {
        let obj: { level?: string; msg?: string } | null = null;
        try {
          obj = JSON.parse(line);
        } catch {
          obj = null;
        }
        const text = String(obj?.msg ?? line)
          .trim()
          .slice(0, 2000);
        const lvl = obj?.level && levels.has(obj.level) ? obj.level : 'info';
        const fields: Record<string, unknown> = { from: 'node-red' };
        if (obj && typeof obj === 'object') {
          for (const [k, v] of Object.entries(obj)) if (k !== 'msg' && k !== 'level') fields[k] = v;
        }
        const fn = lvl === 'fatal' ? log.error : lvl === 'trace' ? log.debug : (log[lvl as keyof FlowsLog] ?? log.info);
        fn.call(log, fields, text);
      });
    }
    if (child.stderr) {
      createInterface({ input: child.stderr }).on('line', (line) => {
        if (line.trim()) log.warn({ from: 'node-red' }, line.slice(0, 2000));
      });
    }
  }
}
