import { existsSync } from 'node:fs';
import { describeError } from '../core/errors.js';
import type { Logger } from '../log.js';
import { findBootBundle, importBundle } from './import.js';

/**
 * `langbiang start` on a first boot without systemd's import step (run by hand as root, or an
 * image that mounts the boot partition): import a bundle found on the boot partition before the
 * config is read. A bundle that cannot be imported is reported and left in place; the gateway
 * then starts with the config it has, or fails with the bundle's message when it has none.
 */
export function importBootBundleOnStart(
  configFile: string,
  makeLog: () => Logger,
  env: NodeJS.ProcessEnv = process.env,
): void {
  const bundle = findBootBundle(env);
  if (!bundle) return;
  const log = makeLog();
  try {
    const r = importBundle({ bundle, configFile });
    log.info(
      { gateway: r.gateway, config: r.configFile, secrets: r.secrets.length, bundle },
      'provisioning bundle imported',
    );
  } catch (err) {
    if (!existsSync(configFile)) throw err;
    log.error(
      { bundle, err: describeError(err) },
      'provisioning bundle not imported; starting with the existing config',
    );
  }
}
