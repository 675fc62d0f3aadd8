import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Gateway, type GatewayOptions } from './app.js';
import { AuthContext } from './auth/index.js';
import { demoConfigPath, type GatewayConfig, parseConfigText } from './config/index.js';
import { describeError } from './core/errors.js';
import { HttpError } from './http/respond.js';
import type { ApplyReport, ConfigHost } from './http/types.js';

/** Pause between answering the apply request and stopping the server that answers it. */
const RESTART_DELAY_MS = 300;

/**
 * Runs the Gateway from a config file and swaps it for a new config without leaving the process:
 * validate, keep the old file as FILE.prev, write the new one, stop the running parts and start
 * them with the new config. When the new config fails to start (a port taken, a bus that cannot
 * be created, a data directory that cannot be opened), the old file is put back and the old
 * config started again. Logins survive: the AuthContext outlives the Gateway.
 */
export class GatewayHost implements ConfigHost {
  private gw: Gateway;
  private auth: AuthContext;
  private report: ApplyReport | null = null;
  private busy = false;
  private config: GatewayConfig;

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
  }

  /** file null: the built-in demo, shown but not editable. */
  static async start(config: GatewayConfig, file: string | null, opts: GatewayOptions): Promise<GatewayHost> {
    const auth = new AuthContext(resolve(config.gateway.dataDir), opts.log);
    const absFile = file ? resolve(file) : null;
    // the host is handed to the HTTP server before it exists, through this holder
    const holder: { host: GatewayHost | null } = { host: null };
    const proxy: ConfigHost = {
      get file() {
        return absFile;
      },
      readText: () => holder.host!.readText(),
      apply: (t, a) => holder.host!.apply(t, a),
      lastApply: () => holder.host?.lastApply() ?? null,
    };
    const fullOpts: GatewayOptions = { ...opts, auth, configHost: proxy };
    const gw = await Gateway.start(config, fullOpts);
    const host = new GatewayHost(gw, config, auth, absFile, fullOpts);
    holder.host = host;
    return host;
  }

  get current(): Gateway {
    return this.gw;
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
    await this.gw
      .stop()
      .catch((err) => this.opts.log.error({ err: describeError(err) }, 'stopping the old parts failed'));
    this.switchAuth(next);
    this.gw = await startChecked(next, this.opts);
    this.config = next;
  }

  get store(): Gateway['store'] {
    return this.gw.store;
  }

  readText(): string {
    if (!this.file) return readFileSync(demoConfigPath(), 'utf8');
    return readFileSync(this.file, 'utf8');
  }

  lastApply(): ApplyReport | null {
    return this.report ? { ...this.report } : null;
  }

  async apply(text: string, actor: string): Promise<{ accepted: true }> {
    if (!this.file) throw new HttpError(409, 'the built-in demo config cannot be changed');
    if (this.busy) throw new HttpError(409, 'a config change is already being applied');
    const parsed = parseConfigText(text, { file: 'config', baseDir: dirname(this.file) });
    if (!parsed.ok)
      throw new HttpError(400, 'the config has problems; nothing was changed', { problems: parsed.problems });
    this.busy = true;
    const file = this.file;
    try {
      copyFileSync(file, `${file}.prev`);
      writeFileSync(`${file}.tmp`, text, { mode: 0o640 });
      renameSync(`${file}.tmp`, file);
    } catch (err) {
      this.busy = false;
      throw new HttpError(500, `cannot write ${file}: ${describeError(err)}`);
    }
    this.report = { state: 'applying', actor, startedAt: new Date().toISOString() };
    this.opts.log.info({ file, by: actor }, 'config change accepted; restarting the gateway parts');
    setTimeout(() => void this.restart(parsed.config, actor), RESTART_DELAY_MS).unref();
    return { accepted: true };
  }

  private async restart(next: GatewayConfig, actor: string): Promise<void> {
    const log = this.opts.log;
    const previous = this.config;
    const file = this.file!;
    try {
      await this.gw.stop().catch((err) => log.error({ err: describeError(err) }, 'stopping the old parts failed'));
      try {
        this.switchAuth(next);
        this.gw = await startChecked(next, this.opts);
        this.config = next;
        this.report = { ...this.report!, state: 'applied', finishedAt: new Date().toISOString() };
        log.info({ file, by: actor }, 'config applied');
        record(this.gw, { change: 'applied', by: actor });
      } catch (err) {
        const why = describeError(err);
        log.error({ err: why, file }, 'the new config failed to start; rolling back to the previous one');
        try {
          copyFileSync(`${file}.prev`, file);
        } catch (e) {
          log.error({ err: describeError(e) }, 'could not restore the previous config file');
        }
        this.switchAuth(previous);
        try {
          this.gw = await Gateway.start(previous, this.opts);
          this.report = { ...this.report!, state: 'rolled_back', finishedAt: new Date().toISOString(), error: why };
          record(this.gw, { change: 'rolled_back', by: actor, error: why });
        } catch (err2) {
          // Nothing runs now; a supervisor (systemd) restarting the process is the way out.
          this.report = {
            ...this.report!,
            state: 'failed',
            finishedAt: new Date().toISOString(),
            error: `${why}; the previous config failed too: ${describeError(err2)}`,
          };
          log.fatal(
            { err: describeError(err2) },
            'the previous config failed to start again; exiting for the supervisor to restart',
          );
          process.exitCode = 1;
          setTimeout(() => process.exit(1), 200).unref();
        }
      }
    } finally {
      this.busy = false;
    }
  }

  private switchAuth(config: GatewayConfig): void {
    const dir = resolve(config.gateway.dataDir);
    if (dir !== this.auth.dataDir) {
      this.auth = new AuthContext(dir, this.opts.log);
      (this.opts as { auth?: AuthContext }).auth = this.auth;
    }
  }

  async stop(): Promise<void> {
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

function record(gw: Gateway, data: Record<string, unknown>): void {
  try {
    gw.store.recordEvent('config', data);
  } catch {
    // the event is a courtesy to the city; the change itself stands
  }
}
