import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { demoConfigPath } from '../config/demo.js';
import { describeError } from '../core/errors.js';
import type { GatewayHost } from '../host.js';
import { createLogger, type Logger } from '../log.js';
import { keyValuesSummary } from '../summary.js';
import { loadStartConfig, logsOf, replayLogs } from './start-config.js';

/**
 * `langbiang start`. With no --config it runs the demo: simulators for the demo config's buses in
 * a child process (`langbiang simulate`, exactly what a technician would run), then the gateway.
 */
export async function runStart(o: {
  config?: string;
  /** `--sync URL`: sync.url for this run */
  sync?: string;
  /** `--simulate`: serve the config's Modbus devices from the simulators, as the demo does */
  simulate?: boolean;
  logFormat?: 'pretty' | 'json';
  verbose?: boolean;
}): Promise<void> {
  // A SIGINT/SIGTERM that comes while the gateway is still starting is kept and acted on once it runs
  // (systemd or a test may stop it at any moment); until then the default handlers are replaced.
  let stopping = false;
  let stopRequested: string | null = null;
  let stop: ((signal: string, exitCode?: number) => Promise<void>) | null = null;
  const onSignal = (signal: string) => {
    if (stop) void stop(signal);
    else stopRequested = signal;
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  const demo = !o.config;
  const file = o.config ?? demoConfigPath();
  // First boot (a provisioning bundle on the boot partition brings this gateway's config and keys),
  // the config file, and a config applied later by the city or the console and kept after its watch
  // (gateway/remote-config): all read in a short-lived child process, so the YAML parser, the
  // schema and the unused profiles never take the gateway's memory (start-config.ts).
  const bootLog = () => createLogger({ level: o.verbose ? 'debug' : undefined, format: o.logFormat });
  let loaded: Awaited<ReturnType<typeof loadStartConfig>>;
  try {
    loaded = await loadStartConfig(file, demo, { syncUrl: o.sync });
  } catch (err) {
    const logs = logsOf(err);
    if (logs.length > 0) replayLogs(logs, bootLog(), bootLog);
    throw err;
  }
  const { config, profiles } = loaded;
  const log = createLogger({ level: o.verbose ? 'debug' : loaded.logLevel, format: o.logFormat });
  replayLogs(loaded.logs, log, bootLog);
  // A stray rejection in a library callback must not take polling down; log it loudly instead.
  process.on('unhandledRejection', (reason) => log.error({ err: describeError(reason) }, 'unhandled rejection'));
  // While stopping, a late error from a closing socket, port or child (e.g. an IPC channel that just
  // closed) is noise: log it and finish the clean stop. Otherwise it is a bug: log it as one JSON
  // line and exit non-zero so systemd restarts us.
  process.on('uncaughtException', (err) => {
    if (stopping) {
      log.warn({ err: describeError(err) }, 'error while stopping (ignored)');
      return;
    }
    log.fatal(
      { err: describeError(err), stack: err instanceof Error ? err.stack : undefined },
      'uncaught exception; exiting',
    );
    log.flush?.();
    process.exit(1);
  });

  let simulator: ChildProcess | null = null;
  if (demo || o.simulate) {
    if (demo) log.info({ config: file }, 'no --config given: starting the demo with simulated devices');
    else log.info({ config: file }, '--simulate: serving the Modbus devices of this config from the simulators');
    simulator = await startSimulatorChild(file, log, demo);
  }
  if (o.sync) log.info({ url: config.sync?.url }, `--sync: syncing to ${config.sync?.url} for this run`);

  // The host runs the Gateway and swaps its config for the city (MQTT) and the console (HTTP) alike:
  // validate → apply → watch → roll back (gateway/remote-config), state under the data directory.
  const { GatewayHost } = await import('../host.js');
  let gateway: Awaited<ReturnType<typeof GatewayHost.start>>;
  try {
    gateway = await GatewayHost.start(config, demo ? null : file, { log, profiles });
  } catch (err) {
    simulator?.kill('SIGTERM');
    throw err;
  }

  const summary = startSummaryLog(gateway, log);
  // Readiness and watchdog pings for systemd (Type=notify), only when systemd started us.
  const { systemdWatchdog } = await import('../systemd/index.js');
  const watchdog = systemdWatchdog({ onError: (message) => log.warn({ err: message }, 'systemd notification failed') });
  watchdog?.ready(`polling ${config.devices.length} devices`);
  if (watchdog)
    log.info({ watchdogMs: watchdog.intervalMs === null ? null : watchdog.intervalMs * 2 }, 'systemd notified: ready');
  const stopHealthLog = logHealth(gateway, log, (text) => watchdog?.status(text));
  // A release installed and not yet confirmed confirms itself here once healthy, or stops (exit 1)
  // so the pre-start check rolls it back; `update` events left by other processes are recorded.
  const { superviseUpdates } = await import('../update/confirm.js');
  const { setUpdateRestartHandler } = await import('../update/restart.js');
  // an update installed from inside the gateway (city, console) restarts it into the new release
  setUpdateRestartHandler((reason, exitCode) => void stop?.(reason, exitCode));
  const updates = superviseUpdates({
    dataDir: config.gateway.dataDir,
    log: log.child({ part: 'update' }),
    events: () => gateway.current.store,
    health: () => gateway.current.health(),
    confirmWindowMs: config.update.confirmWindow,
    onUnhealthy: () => void stop?.('not healthy in the confirmation window', 1),
  });
  stop = async (signal: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    clearInterval(summary);
    stopHealthLog();
    updates.stop();
    watchdog?.stopping();
    try {
      await gateway.stop();
    } catch (err) {
      log.error({ err: describeError(err) }, 'stop failed');
    }
    simulator?.kill('SIGTERM');
    log.flush?.();
    process.exit(exitCode);
  };
  if (stopRequested) void stop(stopRequested);
  simulator?.on('exit', (code) => {
    if (!stopping) log.error({ code }, 'simulator exited; the simulated devices will go offline');
  });
}

function startSimulatorChild(configFile: string, log: Logger, demo: boolean): Promise<ChildProcess> {
  const bin = fileURLToPath(new URL('../../../bin/langbiang.js', import.meta.url));
  const child = spawn(process.execPath, [bin, 'simulate', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    const what = demo ? 'demo simulators' : 'simulators';
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 15 s`)), 15_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      if (buf.includes('simulators ready')) {
        clearTimeout(timer);
        log.info(`${what} ready`);
        child.stdout!.resume();
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with code ${code} (see the line above)`));
    });
  });
}

/**
 * Logs each change of the gateway's health (a bus lost or back, a device going offline) as one
 * line in words, and keeps systemd's status line (`systemctl status langbiang`) the same.
 */
function logHealth(
  host: Pick<GatewayHost, 'onHealthChange'>,
  log: Logger,
  setStatus: (text: string) => void,
): () => void {
  let last = '';
  // the gateway's one health watch (device-health-watch.ts) says when something changed
  return host.onHealthChange(({ problems }) => {
    const text = problems.length > 0 ? `degraded: ${problems.join('; ')}` : 'ok: every bus open, no device offline';
    // a config swap starts a new watch that reports its first check: the same text is no news
    if (text === last) return;
    const first = last === '';
    last = text;
    setStatus(text);
    if (problems.length > 0) log.warn({ problems }, `gateway degraded: ${problems.join('; ')}`);
    else if (!first) log.info('gateway healthy again: every bus open, no device offline');
  });
}

/** A line every 30 s so a technician sees readings flowing, with each device's key values. */
function startSummaryLog(host: GatewayHost, log: Logger): NodeJS.Timeout {
  const report = () => {
    try {
      const gw = host.current;
      const s = gw.store.stats();
      const values = keyValuesSummary(gw.config, gw.profiles, gw.store.latest());
      log.info({ readings: s.readings, lastSeq: s.lastSeq, latest: values }, `readings stored: ${values}`);
    } catch (err) {
      log.warn({ err: describeError(err) }, 'summary failed');
    }
  };
  // First line soon, so whoever just typed `npm start` sees readings flowing; then every 30 s.
  setTimeout(report, 3_000).unref();
  const timer = setInterval(report, 30_000);
  timer.unref();
  return timer;
}
