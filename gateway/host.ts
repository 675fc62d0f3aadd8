import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Gateway, type GatewayOptions } from './app.js';
import { AuthContext } from './auth/index.js';
import { demoConfigPath } from './config/demo.js';
import type { GatewayConfig } from './config/index.js';
import { describeError } from './core/errors.js';
import type { GatewayHealthChange } from './core/events.js';
import { HttpError } from './http/respond.js';
import type { ApplyReport, ConfigHost, RunningConfig } from './http/types.js';
import type { ConfigApplier } from './remote-config/applier.js';
import { RemoteConfigFiles } from './remote-config/persist.js';

export interface GatewayHostOptions extends GatewayOptions {
  /** the watch window of config changes, overriding `sync.remoteConfig.watch` (tests) */
  configWatchMs?: number;
}

/**
 * Runs the Gateway and swaps its parts for a new config without leaving the process. Changing the
 * config — from the city over MQTT or from the console over HTTP — is one mechanism, the
 * ConfigApplier (gateway/remote-config): validate, swap, watch, roll back by itself, `config` event,
 * its state under the data directory. Nothing here writes the config file: the root filesystem
 * may be read-only (systemd ProtectSystem=strict). Logins survive a swap: the AuthContext outlives
 * the Gateway.
 */
export class GatewayHost implements ConfigHost {
  private gw: Gateway;
  private auth: AuthContext;
  private config: GatewayConfig;
  /** the parts are stopped and none started since (a swap whose start failed) */
  private stopped = false;
  /**
   * Loaded on first need (a config message, a change from the console, a watch found at start):
   * validating a config takes the YAML parser and the zod schema, ~20 MB a gateway that is not
   * being reconfigured does not pay (RSS target). Always null for the built-in demo.
   */
  applier: ConfigApplier | null = null;
  private applierLoad: Promise<ConfigApplier> | null = null;
  private configWatchMs: number | undefined;

  private readonly healthListeners = new Set<(h: GatewayHealthChange) => void>();

  private constructor(
    gw: Gateway,
    config: GatewayConfig,
    auth: AuthContext,
    readonly file: string | null,
    private readonly opts: GatewayOptions,
  ) {
    this.gw = gw;
    this.config = config;
    this.auth = auth;
    this.forwardHealth(gw);
  }

  /**
   * file null: the built-in demo, shown but not editable. With a file, a config still under watch
   * when the process last stopped is reported rolled back (recoverAtStart) before any new change.
   */
  static async start(config: GatewayConfig, file: string | null, opts: GatewayHostOptions): Promise<GatewayHost> {
    const { configWatchMs, ...gwOpts } = opts;
    const auth = new AuthContext(resolve(config.gateway.dataDir), opts.log);
    const absFile = file ? resolve(file) : null;
    // the host is handed to the HTTP server (and the sync agent) before it exists, through this holder
    const holder: { host: GatewayHost | null } = { host: null };
    // a retained config message may arrive while the parts start: it waits for the applier
    const early: Buffer[] = [];
    const proxy: ConfigHost = {
      get file() {
        return absFile;
      },
      get applying() {
        return holder.host?.applying ?? false;
      },
      running: () => holder.host!.running(),
      apply: (t, a, sent) => holder.host!.apply(t, a, sent),
      status: (id) => holder.host?.status(id) ?? null,
    };
    const onRemoteConfig =
      gwOpts.onRemoteConfig ??
      (absFile
        ? (payload: Buffer) => {
            const host = holder.host;
            if (host) host.withApplier((a) => a.handleMessage(payload));
            else early.push(payload);
          }
        : undefined);
    const fullOpts: GatewayOptions = { ...gwOpts, auth, configHost: proxy, onRemoteConfig };
    const gw = await Gateway.start(config, fullOpts);
    const host = new GatewayHost(gw, config, auth, absFile, fullOpts);
    host.configWatchMs = configWatchMs;
    // a change still under watch when the process stopped is reported rolled back now, before any other
    if (absFile && new RemoteConfigFiles(config.gateway.dataDir).read().pending) await host.loadApplier();
    holder.host = host;
    for (const payload of early.splice(0)) host.withApplier((a) => a.handleMessage(payload));
    return host;
  }

  /** The applier, loaded once (null for the demo); `recoverAtStart` runs as it is made. */
  async loadApplier(): Promise<ConfigApplier | null> {
    if (!this.file) return null;
    this.applierLoad ??= import('./remote-config/applier.js').then(({ ConfigApplier }) => {
      const applier = new ConfigApplier({
        target: this,
        baseFile: this.file!,
        dataDir: this.config.gateway.dataDir,
        log: this.opts.log.child({ part: 'config' }),
        watchMs: this.configWatchMs,
      });
      applier.recoverAtStart();
      this.applier = applier;
      return applier;
    });
    return this.applierLoad;
  }

  /** Runs `fn` with the applier once it is loaded; calls keep their order (one promise chain). */
  private withApplier(fn: (a: ConfigApplier) => void): void {
    this.loadApplier()
      .then((a) => a && fn(a))
      .catch((err) => this.opts.log.error({ err: describeError(err) }, 'config change machinery failed to load'));
  }

  get current(): Gateway {
    return this.gw;
  }

  /**
   * The gateway's health now (when known) and at each change, from the running parts' one health
   * watch, across config swaps (each swap starts a new watch, whose first check is reported too).
   */
  onHealthChange(fn: (h: GatewayHealthChange) => void): () => void {
    this.healthListeners.add(fn);
    const now = this.gw.healthNow;
    if (now) fn(now);
    return () => this.healthListeners.delete(fn);
  }

  /** Forwards the running parts' health changes to the listeners of every part that comes next. */
  private forwardHealth(gw: Gateway): void {
    gw.events.on('gateway-health', (h) => {
      if (gw !== this.gw) return; // a stopped part's last word
      for (const fn of this.healthListeners) fn(h);
    });
  }

  /** The config the running parts were started with. */
  get runningConfig(): GatewayConfig {
    return this.config;
  }

  /**
   * Stops the running parts and starts them with `next`; rejects when they do not start. No file
   * is written and nothing is rolled back here: that is the caller's (gateway/remote-config).
   */
  async swap(next: GatewayConfig): Promise<void> {
    if (!this.stopped) {
      await this.gw
        .stop()
        .catch((err) => this.opts.log.error({ err: describeError(err) }, 'stopping the old parts failed'));
      this.stopped = true;
    }
    this.switchAuth(next);
    // the profiles handed in at start were only those of the first config's devices
    delete (this.opts as { profiles?: unknown }).profiles;
    this.gw = await startChecked(next, this.opts);
    this.forwardHealth(this.gw);
    // its first check ran inside start, before anyone here listened
    const now = this.gw.healthNow;
    if (now) for (const fn of this.healthListeners) fn(now);
    this.stopped = false;
    this.config = next;
  }

  get store(): Gateway['store'] {
    return this.gw.store;
  }

  get applying(): boolean {
    return this.applier?.applying ?? false;
  }

  running(): RunningConfig {
    if (!this.file) return { text: readFileSync(demoConfigPath(), 'utf8'), origin: 'demo' };
    if (this.applier) return this.applier.runningText() ?? { text: readFileSync(this.file, 'utf8'), origin: 'file' };
    // not loaded: nothing is under watch in this run, so only a change kept from an earlier one can run
    const files = new RemoteConfigFiles(this.config.gateway.dataDir);
    const state = files.read();
    const text = state.applied ? files.activeText() : null;
    if (state.applied && text !== null)
      return { text, origin: 'applied', by: state.applied.actor, at: state.applied.appliedAt };
    return { text: readFileSync(this.file, 'utf8'), origin: 'file' };
  }

  status(id?: string): ApplyReport | null {
    return this.applier?.status(id) ?? null;
  }

  /** A change from the console: validated now, applied (and watched) in the background. */
  async apply(text: string, actor: string, sent: Promise<unknown>): Promise<{ id: string }> {
    const applier = await this.loadApplier();
    if (!applier) throw new HttpError(409, 'the built-in demo config cannot be changed');
    if (applier.applying)
      throw new HttpError(409, 'a config change is already being applied or watched; wait for its outcome', {
        apply: applier.status(),
      });
    const checked = applier.check(text);
    if (!checked.ok)
      throw new HttpError(422, 'the config has problems; nothing was changed', { problems: checked.problems });
    const id = (await import('./remote-config/applier.js')).newApplyId();
    applier
      .apply({ id, version: null, text, source: 'http', actor, after: sent })
      .catch((err) => this.opts.log.error({ err: describeError(err) }, 'config apply failed'));
    return { id };
  }

  private switchAuth(config: GatewayConfig): void {
    const dir = resolve(config.gateway.dataDir);
    if (dir !== this.auth.dataDir) {
      this.auth = new AuthContext(dir, this.opts.log);
      (this.opts as { auth?: AuthContext }).auth = this.auth;
    }
  }

  async stop(): Promise<void> {
    this.applier?.stop();
    if (this.stopped) return;
    this.stopped = true;
    await this.gw.stop();
  }
}

/** Starts a gateway and checks that every configured bus got a driver; otherwise it counts as a failed start. */
async function startChecked(config: GatewayConfig, opts: GatewayOptions): Promise<Gateway> {
  const gw = await Gateway.start(config, opts);
  const missing = config.buses.filter((b) => !gw.buses.has(b.id)).map((b) => b.id);
  if (missing.length > 0) {
    await gw.stop().catch(() => {});
    throw new Error(`bus${missing.length > 1 ? 'es' : ''} ${missing.join(', ')} could not be started`);
  }
  return gw;
}
