import type { GatewayConfig } from '../config/index.js';
import { LangbiangError } from '../core/errors.js';
import type { DeviceProfile } from '../core/point.js';
import type { Logger } from '../log.js';

/** A log call made while the config was read, replayed by the gateway's own logger. */
export interface LogRecord {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string;
  /** logged by the first-boot bundle import, whose logger does not follow the config's level */
  boot?: boolean;
}

export interface StartConfig {
  /** the config to run: the file's, or one applied later by a config change (gateway/remote-config) */
  config: GatewayConfig;
  /** the level the config file asks for (the file's, even when an applied config runs) */
  logLevel: string | undefined;
  /** the profiles the config's devices use, and no others */
  profiles: Map<string, DeviceProfile>;
}

/** What `langbiang start`'s flags change in the config for this run. */
export interface StartOverrides {
  /** `--sync URL`: sync.url for this run (the rest of `sync` from the file, or its defaults) */
  syncUrl?: string;
}

export type StartConfigOutcome =
  | ({ ok: true; logs: LogRecord[] } & StartConfig)
  | {
      ok: false;
      logs: LogRecord[];
      error: { code: string; message: string; langbiang: boolean; details?: Record<string, unknown> };
    };

/**
 * What `langbiang start` does before the gateway runs: import a first-boot bundle, read and
 * validate the config (YAML, schema, cross-checks against every profile), pick the config a change
 * applied earlier left running, and keep the profiles its devices use. Throws the same errors the
 * in-process path always threw.
 */
export async function prepareStartConfig(
  file: string,
  demo: boolean,
  logs: LogRecord[],
  overrides: StartOverrides = {},
): Promise<StartConfig> {
  if (!demo) (await import('../provision/boot.js')).importBootBundleOnStart(file, () => recordingLogger(logs, true));
  const { configError, formatProblems, loadConfigFile } = await import('../config/index.js');
  let loaded = loadConfigFile(file);
  if (loaded.ok && overrides.syncUrl !== undefined) loaded = await withSyncUrl(file, overrides.syncUrl);
  if (!loaded.ok)
    // the message loadValidConfig (config-arg.ts) always gave
    throw loaded.problems.length === 1 && loaded.problems[0]?.path === file
      ? configError(file, loaded.problems) // the file itself: missing or unreadable, not "not valid"
      : new LangbiangError('CONFIG_INVALID', `${file} is not valid:\n${formatProblems(loaded.problems)}`);
  // what `validate` warns about, the gateway says at start too (a missing serial adapter, an expired certificate)
  for (const w of loaded.warnings)
    logs.push({
      level: 'warn',
      obj: { key: w.path, ...(w.line !== undefined ? { line: w.line } : {}) },
      msg: `config warning: ${w.path}: ${w.message}`,
    });
  let config = loaded.config;
  let all: ReadonlyMap<string, DeviceProfile> = loaded.profiles;
  if (!demo) {
    const { effectiveConfig } = await import('../remote-config/effective.js');
    config = effectiveConfig(file, loaded.config, recordingLogger(logs)).config;
    if (config !== loaded.config && config.gateway.profilesDir !== loaded.config.gateway.profilesDir) {
      const { loadProfiles } = await import('../../hardware/profiles.js');
      all = loadProfiles(config.gateway.profilesDir ? [config.gateway.profilesDir] : []);
    }
  }
  const profiles = new Map<string, DeviceProfile>();
  for (const d of config.devices) {
    const p = all.get(d.profile);
    if (p) profiles.set(d.profile, p);
  }
  return { config, logLevel: loaded.config.log?.level, profiles };
}

/** A Logger that only records its calls (enough of pino's surface for the config readers). */
export function recordingLogger(logs: LogRecord[], boot = false): Logger {
  const at =
    (level: LogRecord['level']) =>
    (a: unknown, b?: unknown): void => {
      const [obj, msg] = typeof a === 'string' ? [{}, a] : [(a ?? {}) as Record<string, unknown>, String(b ?? '')];
      logs.push({ level, obj, msg, ...(boot ? { boot } : {}) });
    };
  const l = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    trace: () => {},
    fatal: at('error'),
    child: () => l,
  };
  return l as unknown as Logger;
}

/**
 * The config file with `sync.url` set (the `--sync` flag), validated as a whole again so a bad URL
 * is a `sync.url: …` problem like any other. The file itself is not changed.
 */
async function withSyncUrl(file: string, url: string) {
  const { readFileSync } = await import('node:fs');
  const { parseDocument } = await import('yaml');
  const { parseConfigText } = await import('../config/index.js');
  const doc = parseDocument(readFileSync(file, 'utf8'));
  doc.setIn(['sync', 'url'], url);
  const result = parseConfigText(doc.toString(), { file });
  if (result.ok) return result;
  // the URL came from the command line, not from a line of the file
  const problems = result.problems.map((p) => (p.path === 'sync.url' ? { path: '--sync', message: p.message } : p));
  return { ok: false as const, problems };
}
