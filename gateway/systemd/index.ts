import { SystemdNotifySink, systemdEnv } from './notify.js';
import { Watchdog } from './watchdog.js';

export { type NotifySink, type SystemdEnv, SystemdNotifySink, systemdEnv } from './notify.js';
export { Watchdog, type WatchdogOptions, type WatchdogTimers } from './watchdog.js';

/**
 * The watchdog for this process when systemd started it with Type=notify ($NOTIFY_SOCKET set),
 * else null — run by hand, in docker or under tests, nothing is sent.
 */
export function systemdWatchdog(opts: {
  env?: NodeJS.ProcessEnv;
  onError?: (message: string) => void;
  healthy?: () => boolean;
}): Watchdog | null {
  const env = systemdEnv(opts.env ?? process.env);
  if (!env) return null;
  const sink = new SystemdNotifySink({ socket: env.socket, onError: opts.onError });
  return new Watchdog({ sink, watchdogMs: env.watchdogMs, healthy: opts.healthy });
}
