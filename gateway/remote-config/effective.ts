import { dirname } from 'node:path';
import { type GatewayConfig, parseConfigText } from '../config/index.js';
import type { Logger } from '../log.js';
import { baseHashOf, RemoteConfigFiles } from './persist.js';

/**
 * The config to start with: the base file, unless a config applied later (by the city or the
 * console) was kept while the base file stayed as it was. A technician's edit of the base file
 * after that wins: the applied one is forgotten (logged), so what is on disk in /etc is what runs.
 */
export function effectiveConfig(
  baseFile: string,
  base: GatewayConfig,
  log: Logger,
): { config: GatewayConfig; version: number | null } {
  const files = new RemoteConfigFiles(base.gateway.dataDir);
  if (!files.exists()) return { config: base, version: null };
  const state = files.read();
  if (!state.applied) return { config: base, version: null };
  if (state.applied.baseHash !== baseHashOf(baseFile)) {
    log.warn(
      { version: state.applied.version, file: baseFile },
      'the config file was edited after a config change was applied; the file wins',
    );
    files.dropApplied(state);
    return { config: base, version: null };
  }
  const text = files.activeText();
  const parsed = text === null ? null : parseConfigText(text, { file: 'applied config', baseDir: dirname(baseFile) });
  if (!parsed?.ok) {
    log.error(
      { version: state.applied.version, problems: parsed && !parsed.ok ? parsed.problems : 'missing' },
      'the applied config cannot be used; starting with the config file',
    );
    files.dropApplied(state);
    return { config: base, version: null };
  }
  log.info(
    { version: state.applied.version, appliedAt: state.applied.appliedAt, by: state.applied.actor },
    'starting with the config applied by a config change',
  );
  return { config: parsed.config, version: state.applied.version };
}
