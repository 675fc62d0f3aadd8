import { createHash, type KeyObject, randomBytes } from 'node:crypto';
import { dirname, join, sep } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { ConfigProblem, GatewayConfig } from '../config/index.js';
import { formatProblems, parseConfigText } from '../config/index.js';
import { readYaml } from '../config/yaml-source.js';
import { loadControlKeys } from '../control-keys.js';
import { describeError } from '../core/errors.js';
import type { EventRecorder } from '../core/outbox.js';
import { verifySigned } from '../core/signed.js';
import type { Logger } from '../log.js';
import { SECRETS_SUBDIR } from '../provision/bundle.js';
import { RefusalBudget } from '../refusals.js';
import { MAX_CONFIG_LIFETIME_MS, MAX_CONFIG_MESSAGE, parseConfigMessage } from './envelope.js';
import { baseHashOf, RemoteConfigFiles, type RemoteConfigState } from './persist.js';
import { snapshot, type WatchedGateway, watchProblems } from './watch.js';

/** The gateway runner the applier swaps configs in (GatewayHost). */
export interface ApplyTarget {
  /** the config the running parts were started with */
  readonly runningConfig: GatewayConfig;
  readonly current: WatchedGateway & { readonly store: Partial<EventRecorder> };
  /** stop the running parts and start them with `next`; rejects when they do not start */
  swap(next: GatewayConfig): Promise<void>;
}

export type ApplySource = 'mqtt' | 'http' | 'cli';

export interface ApplyRequest {
  /** the city's version; null for a local change (HTTP console) */
  version: number | null;
  /** the new config, YAML */
  text: string;
  source: ApplySource;
  actor: string;
  /** override of the watch window (ms) */
  watchMs?: number;
  /**
   * sha256 of the signed bytes (city messages): the same message again (a retained one at each
   * reconnect) is ignored; another message with a version already handled is a replay, refused
   */
  digest?: string;
  /** names this change in status(); made up when absent */
  id?: string;
  /**
   * The swap waits for this: the console's HTTP reply must go out before the server that sends it
   * is stopped by the swap. Validation and the `applying` status happen before, at once.
   */
  after?: Promise<unknown>;
}

export type Outcome = 'applied' | 'rolled_back' | 'refused' | 'ignored' | 'busy';

export interface ApplyResult {
  outcome: Outcome;
  version: number | null;
  problems: string[];
}

/**
 * One change as the console (or anyone asking) sees it: `applying` while the new config starts
 * (`phase: starting`), runs on probation (`watching`, until `watchUntil`) or the previous one comes
 * back (`rolling_back`); then the outcome. `failed`: not even the previous config started again.
 */
export interface ApplyStatus {
  id: string;
  source: ApplySource;
  actor: string;
  version: number | null;
  state: 'applying' | 'applied' | 'rolled_back' | 'refused' | 'failed';
  phase?: 'starting' | 'watching' | 'rolling_back';
  startedAt: string;
  watchMs?: number;
  watchUntil?: string;
  finishedAt?: string;
  problems: string[];
}

/** Longest problem line kept in a `config` event. */
const MAX_PROBLEM = 300;

/** How many finished changes status(id) still knows. */
const STATUS_KEPT = 20;

export function newApplyId(): string {
  return randomBytes(6).toString('hex');
}

export interface ConfigApplierOptions {
  target: ApplyTarget;
  /** the base config file (`--config`); relative paths in a new config resolve against its folder */
  baseFile: string | null;
  dataDir: string;
  log: Logger;
  /** how long a new config is watched before it is kept (default 5 min) */
  watchMs?: number;
  /** tests and the applier's own stop() cut the watch short */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  now?: () => number;
  /** the city keys pinned on this gateway (default: read from <dataDir>/trust/control/ at each message) */
  controlKeys?: ReadonlyMap<string, KeyObject>;
  /** the old config did not come back either: nothing runs (default: exit 1 for systemd to restart) */
  onFatal?: (err: unknown) => void;
}

export const DEFAULT_WATCH_MS = 5 * 60_000;

const realSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

/**
 * Validate → apply → watch → roll back, for any source of a new config (the city over MQTT, the
 * technician's console over HTTP). The store is never touched: a change may not move the data
 * directory, rename the gateway or change the storage caps, and the swap reopens the same database
 * (same epoch, seqs go on). A new config runs "on probation" for the watch window; if a bus does not
 * open, a device that answered stops answering, or sync stops working, the previous config is put
 * back by itself. Every outcome is recorded as a `config` event, which the sync agent sends on.
 */
export class ConfigApplier {
  private readonly files: RemoteConfigFiles;
  private busy = false;
  private readonly abort = new AbortController();
  private last: (ApplyResult & { at: number }) | null = null;
  private readonly statuses: ApplyStatus[] = [];
  private readonly untrusted: RefusalBudget;

  constructor(private readonly o: ConfigApplierOptions) {
    this.files = new RemoteConfigFiles(o.dataDir);
    this.untrusted = new RefusalBudget(() => this.now());
  }

  get applying(): boolean {
    return this.busy;
  }

  lastResult(): (ApplyResult & { at: number }) | null {
    return this.last;
  }

  state(): RemoteConfigState {
    return this.files.read();
  }

  /** The change in progress or the newest one (`id`: that change, while it is among the last few). */
  status(id?: string): ApplyStatus | null {
    const s = id === undefined ? this.statuses.at(-1) : this.statuses.find((x) => x.id === id);
    return s ? { ...s, problems: [...s.problems] } : null;
  }

  /**
   * The text of the config the gateway runs, when it is not the base file: the one under watch, or
   * the one kept after a change (a start uses it while the base file is unchanged). null: the file.
   */
  runningText(): { text: string; origin: 'trial' | 'applied'; by: string; at: string } | null {
    const state = this.files.read();
    if (state.pending) {
      const text = this.files.pendingText();
      if (text !== null) return { text, origin: 'trial', by: state.pending.actor, at: state.pending.startedAt };
    }
    if (state.applied) {
      const text = this.files.activeText();
      if (text !== null) return { text, origin: 'applied', by: state.applied.actor, at: state.applied.appliedAt };
    }
    return null;
  }

  /**
   * Validation alone, with the key path and line of each problem, as the console shows it before
   * anything is changed. The same rules as apply(): the config schema and cross-checks, then what a
   * config change may not do (move the store, rename the gateway, drop sync).
   */
  check(text: string): { ok: true; config: GatewayConfig } | { ok: false; problems: ConfigProblem[] } {
    return this.validate(text, this.o.target.runningConfig);
  }

  /**
   * An MQTT `config` message: never throws. It must be signed by a city key pinned on this gateway,
   * for this gateway and not expired; anything else is refused with an event and changes nothing
   * (not even the highest version seen). The key's name is the actor.
   */
  handleMessage(payload: Buffer): void {
    const keys = this.o.controlKeys ?? loadControlKeys(this.o.dataDir).keys;
    const verified = verifySigned(payload, {
      kind: 'config',
      gateway: this.o.target.runningConfig.gateway.id,
      keys,
      now: this.now(),
      maxLifetimeMs: MAX_CONFIG_LIFETIME_MS,
      maxBytes: 2 * MAX_CONFIG_MESSAGE,
    });
    if (!verified.ok) {
      // anyone on the broker can send these: a flood is counted, not recorded one by one
      const event = this.untrusted.admit({
        outcome: 'refused' as const,
        reason: verified.reason,
        version: null,
        source: 'mqtt',
        actor: 'unverified',
        problems: [verified.message],
      });
      if (!event) return;
      this.o.log.warn(
        { reason: verified.reason, problem: verified.message },
        'remote config message refused: not trusted',
      );
      this.record(event);
      return;
    }
    const parsed = parseConfigMessage(JSON.stringify(verified.body.message));
    if (!parsed.ok) {
      this.o.log.warn({ version: parsed.version, problem: parsed.problem }, 'remote config message refused');
      this.record({
        outcome: 'refused',
        reason: 'malformed',
        version: parsed.version,
        source: 'mqtt',
        actor: verified.key,
        problems: [parsed.problem],
      });
      return;
    }
    const m = parsed.message;
    this.apply({
      version: m.version,
      text: m.text,
      source: 'mqtt',
      actor: verified.key,
      watchMs: m.watchMs,
      digest: createHash('sha256').update(verified.bodyBytes).digest('hex'),
    }).catch((err) => this.o.log.error({ err: describeError(err) }, 'remote config apply failed'));
  }

  /**
   * At start: a config found still under watch means the process died watching it (crash,
   * watchdog, power cut). It was never kept — the previous config is what started — so say so.
   */
  recoverAtStart(): void {
    const state = this.files.read();
    if (!state.pending) return;
    const p = state.pending;
    this.files.abort(state);
    const problems = [
      'the gateway restarted before the watch ended (crash, watchdog or power loss); the previous config was started',
    ];
    this.o.log.warn(
      { version: p.version },
      'config under watch at the last stop was not kept; running the previous one',
    );
    this.record({ outcome: 'rolled_back', version: p.version, source: p.source, actor: p.actor, problems });
  }

  async apply(req: ApplyRequest): Promise<ApplyResult> {
    const log = this.o.log;
    if (this.busy) {
      return this.done(
        { outcome: 'busy', version: req.version, problems: ['another config change is being applied'] },
        req,
        false,
      );
    }
    this.busy = true;
    try {
      let state = this.files.read();
      if (req.version !== null && req.version <= state.lastSeenVersion) {
        if (req.digest === undefined || req.digest === state.lastSeenDigest) {
          // the retained message delivered again after a reconnect: already handled
          log.debug({ version: req.version, lastSeen: state.lastSeenVersion }, 'remote config version already handled');
          return this.done({ outcome: 'ignored', version: req.version, problems: [] }, req, false);
        }
        // an older signed message sent again: someone replays what the city once sent
        const problem = `replayed: version ${req.version} is not newer than version ${state.lastSeenVersion}, already handled`;
        // (anyone who saw it on the broker can: capped like the unsigned ones)
        const event = this.untrusted.admit({
          ...this.recordOf(req),
          outcome: 'refused' as const,
          reason: 'replayed',
          problems: [problem],
        });
        if (event) {
          log.warn({ version: req.version, lastSeen: state.lastSeenVersion }, 'remote config refused: replayed');
          this.record(event);
        }
        return { outcome: 'refused', version: req.version, problems: [problem] };
      }
      this.track(req);
      const previous = this.o.target.runningConfig;
      const checked = this.validate(req.text, previous, req.source);
      if (!checked.ok) {
        if (req.version !== null) {
          state = { ...state, lastSeenVersion: req.version, lastSeenDigest: req.digest ?? null };
          this.files.write(state);
        }
        const problems = checked.problems.map((p) => formatProblems([p]));
        log.warn({ version: req.version, problems }, 'new config refused; nothing changed');
        return this.done({ outcome: 'refused', version: req.version, problems }, req);
      }
      const next = checked.config;
      const applied = () => ({
        version: req.version ?? state.applied?.version ?? 0,
        appliedAt: new Date(this.now()).toISOString(),
        baseHash: baseHashOf(this.o.baseFile),
        source: req.source,
        actor: req.actor,
      });
      if (isDeepStrictEqual(next, previous)) {
        state = this.files.begin(
          state,
          { version: req.version, startedAt: new Date(this.now()).toISOString(), source: req.source, actor: req.actor },
          req.text,
          req.digest,
        );
        this.files.commit(state, applied(), req.text);
        return this.done({ outcome: 'applied', version: req.version, problems: [] }, req);
      }

      if (req.after) await req.after.catch(() => {});
      const before = snapshot(this.o.target.current, previous);
      state = this.files.begin(
        state,
        { version: req.version, startedAt: new Date(this.now()).toISOString(), source: req.source, actor: req.actor },
        req.text,
        req.digest,
      );
      const since = this.now();
      log.info(
        { version: req.version, source: req.source, by: req.actor },
        'applying a new config; the store stays as it is',
      );
      let problems: string[];
      try {
        await this.o.target.swap(next);
        // the known-good config decides how long the new one is on probation
        const watchMs = req.watchMs ?? this.o.watchMs ?? previous.sync?.remoteConfig?.watch ?? DEFAULT_WATCH_MS;
        this.update({
          phase: 'watching',
          watchMs,
          watchUntil: new Date(this.now() + watchMs).toISOString(),
        });
        log.info({ version: req.version, watchMs }, 'new config running; watching it before keeping it');
        await (this.o.sleep ?? realSleep)(watchMs, this.abort.signal);
        if (this.abort.signal.aborted) {
          // stopping: the pending file makes the next start run the previous config
          return this.done(
            { outcome: 'rolled_back', version: req.version, problems: ['the gateway stopped during the watch'] },
            req,
            false,
          );
        }
        problems = watchProblems(this.o.target.current, next, before, since, { requireSync: req.source === 'mqtt' });
      } catch (err) {
        problems = [`the new config did not start: ${describeError(err)}`];
      }

      if (problems.length === 0) {
        this.files.commit(state, applied(), req.text);
        log.info({ version: req.version }, 'new config kept after the watch');
        return this.done({ outcome: 'applied', version: req.version, problems }, req);
      }
      log.warn({ version: req.version, problems }, 'new config failed the watch; rolling back to the previous one');
      this.update({ phase: 'rolling_back', problems });
      try {
        await this.o.target.swap(previous);
      } catch (err) {
        log.fatal({ err: describeError(err) }, 'the previous config did not start again either');
        const all = [...problems, `rollback failed: ${describeError(err)}`];
        this.update({
          state: 'failed',
          phase: undefined,
          problems: all,
          finishedAt: new Date(this.now()).toISOString(),
        });
        // the pending file stays: the restart by the supervisor starts the previous config and reports it
        (this.o.onFatal ?? defaultFatal)(err);
        return { outcome: 'rolled_back', version: req.version, problems: all };
      }
      this.files.abort(state);
      return this.done({ outcome: 'rolled_back', version: req.version, problems }, req);
    } catch (err) {
      // e.g. the data directory is not writable: whoever follows the change must see it end
      const s = this.statuses.at(-1);
      if (s?.state === 'applying')
        this.update({
          state: 'failed',
          phase: undefined,
          problems: [`the change could not be carried out: ${describeError(err)}`],
          finishedAt: new Date(this.now()).toISOString(),
        });
      throw err;
    } finally {
      this.busy = false;
    }
  }

  /** Cuts a watch short (the process is stopping); what was under watch is not kept. */
  stop(): void {
    this.abort.abort();
  }

  private validate(
    text: string,
    previous: GatewayConfig,
    source: ApplySource = 'http',
  ): { ok: true; config: GatewayConfig } | { ok: false; problems: ConfigProblem[] } {
    const parsed = parseConfigText(text, {
      file: 'config',
      baseDir: this.o.baseFile ? dirname(this.o.baseFile) : process.cwd(),
      checkFiles: true,
      // a config from the city or the console never reads a file of the gateway's into itself
      allowFileTags: false,
    });
    if (!parsed.ok) return { ok: false, problems: parsed.problems };
    const next = parsed.config;
    const problems: ConfigProblem[] = [];
    const yaml = readYaml(text);
    const at = (path: string, message: string): ConfigProblem => {
      const line = yaml.ok ? yaml.source.lineOf(path.split('.')) : undefined;
      return line === undefined ? { path, message } : { path, message, line };
    };
    if (next.gateway.id !== previous.gateway.id) {
      problems.push(
        at('gateway.id', `cannot change from ${previous.gateway.id} to ${next.gateway.id} by a config change`),
      );
    }
    if (next.gateway.dataDir !== previous.gateway.dataDir) {
      problems.push(
        at(
          'gateway.dataDir',
          `cannot change by a config change (the store stays where it is: ${previous.gateway.dataDir})`,
        ),
      );
    }
    if (!isDeepStrictEqual(next.storage, previous.storage)) {
      problems.push(at('storage', 'cannot change by a config change (the buffer is never touched); change it on site'));
    }
    if (previous.sync && !next.sync)
      problems.push(at('sync', 'the new config has no sync section; the city could not reach this gateway again'));
    // a secret file is sent to the broker (a password) or decides whom to trust (a CA): a config
    // sent to the gateway may keep the ones it has or name new ones in the secrets directory,
    // never any other file of the gateway (which would go to whatever broker the config names)
    const secretsDir = join(previous.gateway.dataDir, SECRETS_SUBDIR) + sep;
    const secretFiles = (c: GatewayConfig) => ({
      'sync.passwordFile': c.sync?.passwordFile,
      'sync.tls.ca': c.sync?.tls?.ca,
      'sync.tls.cert': c.sync?.tls?.cert,
      'sync.tls.key': c.sync?.tls?.key,
    });
    const before = secretFiles(previous);
    for (const [path, file] of Object.entries(secretFiles(next))) {
      if (file === undefined || file === before[path as keyof typeof before] || file.startsWith(secretsDir)) continue;
      problems.push(
        at(path, `a config sent to the gateway may only name files in ${secretsDir} (or keep the one it has)`),
      );
    }
    // what the flows may do is decided on site
    if (source === 'mqtt') {
      if (next.flows.allowUnsafeNodes !== previous.flows.allowUnsafeNodes)
        problems.push(at('flows.allowUnsafeNodes', 'cannot change from the city; change it on site'));
      if (next.flows.user !== previous.flows.user)
        problems.push(at('flows.user', 'cannot change from the city; change it on site'));
    }
    return problems.length ? { ok: false, problems } : { ok: true, config: next };
  }

  /** A new change: the one status() reports from now on. */
  private track(req: ApplyRequest): void {
    this.statuses.push({
      id: req.id ?? newApplyId(),
      source: req.source,
      actor: req.actor,
      version: req.version,
      state: 'applying',
      phase: 'starting',
      startedAt: new Date(this.now()).toISOString(),
      problems: [],
    });
    if (this.statuses.length > STATUS_KEPT) this.statuses.shift();
  }

  private update(change: Partial<ApplyStatus>): void {
    const s = this.statuses.at(-1);
    if (s) Object.assign(s, change);
  }

  private done(r: ApplyResult, req: ApplyRequest, record = true): ApplyResult {
    this.last = { ...r, at: this.now() };
    const s = this.statuses.at(-1);
    if (
      s &&
      s.state === 'applying' &&
      (r.outcome === 'applied' || r.outcome === 'rolled_back' || r.outcome === 'refused')
    )
      this.update({
        state: r.outcome,
        phase: undefined,
        problems: r.problems,
        finishedAt: new Date(this.now()).toISOString(),
      });
    if (record) this.record({ ...this.recordOf(req), outcome: r.outcome, version: r.version, problems: r.problems });
    return r;
  }

  private recordOf(req: ApplyRequest): { version: number | null; source: string; actor: string } {
    return { version: req.version, source: req.source, actor: req.actor };
  }

  private record(data: {
    outcome: Outcome;
    /** why a message was refused before it was read as a config (signature, replay…) */
    reason?: string;
    /** refusals of the same sort left out since the last one recorded (a flood) */
    suppressed?: number;
    version: number | null;
    source: string;
    actor: string;
    problems: string[];
  }): void {
    try {
      const store = this.o.target.current.store;
      // bounded, so that the refusal of a huge message is itself recorded (an event is at most 64 KiB)
      const problems = data.problems
        .slice(0, 20)
        .map((p) => (p.length > MAX_PROBLEM ? `${p.slice(0, MAX_PROBLEM)}…` : p));
      store.recordEvent?.('config', { ...data, problems });
    } catch (err) {
      this.o.log.warn({ err: describeError(err) }, 'config event not recorded');
    }
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }
}

function defaultFatal(): void {
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 200).unref();
}
