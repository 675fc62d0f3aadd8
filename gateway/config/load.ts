import { readFileSync, statSync } from 'node:fs';
import { loadProfiles } from '../../hardware/profiles.js';
import { describeError, LangbiangError } from '../core/errors.js';
import type { DeviceProfile } from '../core/point.js';
import { crossCheck } from './cross-check.js';
import { checkSerialPorts, checkTlsFiles } from './hardware-checks.js';
import {
  type ConfigProblem,
  configErrorMap,
  formatProblems,
  issuesToProblems,
  type PathSegment,
  pathToString,
  type RawProblem,
} from './problems.js';
import { type GatewayConfig, gatewayConfigSchema } from './schema.js';
import {
  checkSecretFiles,
  refuseFileRefs,
  resolveConfigPaths,
  resolveFileRefs,
  unreadableReason,
  withoutFileContent,
} from './secrets.js';
import { readYaml, type YamlSource } from './yaml-source.js';

export interface ParseConfigOptions {
  /** file name for file-level messages (`config.yaml: the file is empty`) */
  file?: string;
  /** profiles to check devices against; default: built-in profiles plus gateway.profilesDir */
  profiles?: ReadonlyMap<string, DeviceProfile>;
  /** relative paths in the config (dataDir, profilesDir, secret files) resolve against this; default: the working directory */
  baseDir?: string;
  /** check that secret/TLS files exist and are readable (default true; false to validate a config away from its gateway) */
  checkFiles?: boolean;
  /**
   * `!file` tags are read (default true: the config file on the gateway's disk). False for a config
   * that came over the network or from the console: a tag there is a problem, never a file read.
   */
  allowFileTags?: boolean;
}

export type ConfigResult =
  | { ok: true; config: GatewayConfig; profiles: ReadonlyMap<string, DeviceProfile>; warnings: ConfigProblem[] }
  | { ok: false; problems: ConfigProblem[] };

// A config is a few kilobytes; anything this big is the wrong file (a database, a log).
const MAX_CONFIG_BYTES = 1 << 20;

/** Prints paths, adds YAML lines, and orders problems as they appear in the file. */
function located(
  raw: readonly RawProblem[],
  source: YamlSource | undefined,
  file: string | undefined,
): ConfigProblem[] {
  const problems: ConfigProblem[] = raw.map((p) => {
    if (p.path.length === 0) return { path: file ?? '', message: p.message };
    const line = source?.lineOf(p.path);
    return line === undefined
      ? { path: pathToString(p.path), message: p.message }
      : { path: pathToString(p.path), message: p.message, line };
  });
  return problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}

function profilesFor(
  config: GatewayConfig,
  opts: ParseConfigOptions,
): { profiles?: ReadonlyMap<string, DeviceProfile>; problems: RawProblem[] } {
  if (opts.profiles) return { profiles: opts.profiles, problems: [] };
  const dir = config.gateway.profilesDir;
  if (dir !== undefined) {
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) return { problems: [{ path: ['gateway', 'profilesDir'], message: `${dir} is not a directory` }] };
  }
  try {
    return { profiles: loadProfiles(dir !== undefined ? [dir] : []), problems: [] };
  } catch (err) {
    // one line per problem: the loader's multi-line message is folded
    const message = describeError(err)
      .replace(/:\n\s*/, ': ')
      .replace(/\n\s*/g, '; ');
    return {
      problems: [
        { path: dir !== undefined ? ['gateway', 'profilesDir'] : [], message: `cannot load profiles: ${message}` },
      ],
    };
  }
}

/**
 * Validates a config's text: YAML, then the schema, then the cross-checks (references, uniqueness,
 * profile fit, secret files). Returns every problem found at the stage that failed, never throws
 * for bad input.
 */
export function parseConfigText(text: string, opts: ParseConfigOptions = {}): ConfigResult {
  const yaml = readYaml(text);
  if (!yaml.ok) return { ok: false, problems: located(yaml.problems, undefined, opts.file) };
  const { source } = yaml;
  const baseDir = opts.baseDir ?? process.cwd();

  const fromFiles: PathSegment[][] = [];
  const fileProblems =
    opts.allowFileTags === false ? refuseFileRefs(source.data) : resolveFileRefs(source.data, baseDir, fromFiles);
  if (fileProblems.length > 0) return { ok: false, problems: located(fileProblems, source, opts.file) };

  const parsed = gatewayConfigSchema.safeParse(source.data, { error: configErrorMap, reportInput: true });
  if (!parsed.success) {
    const problems = withoutFileContent(
      issuesToProblems(parsed.error.issues, gatewayConfigSchema, source.data),
      fromFiles,
    );
    return { ok: false, problems: located(problems, source, opts.file) };
  }
  const config = resolveConfigPaths(parsed.data, baseDir);

  const loaded = profilesFor(config, opts);
  const secrets = checkSecretFiles(config, opts.checkFiles ?? true);
  if (!loaded.profiles) return { ok: false, problems: located([...loaded.problems, ...secrets], source, opts.file) };

  const checked = crossCheck(config, loaded.profiles);
  // the machine itself, when the config is checked where it runs: serial ports here, TLS files parsed
  const onMachine = opts.checkFiles ?? true;
  const tls = onMachine && secrets.length === 0 ? checkTlsFiles(config) : { problems: [], warnings: [] };
  const problems = [...checked.problems, ...secrets, ...tls.problems];
  if (problems.length > 0) return { ok: false, problems: located(problems, source, opts.file) };
  const warnings = [...checked.warnings, ...tls.warnings, ...(onMachine ? checkSerialPorts(config) : [])];
  return { ok: true, config, profiles: loaded.profiles, warnings: located(warnings, source, opts.file) };
}

/** Reads and validates a config file; an unreadable file is one problem addressed by the file name. */
export function loadConfigFile(file: string, opts: Omit<ParseConfigOptions, 'file'> = {}): ConfigResult {
  const cannot = (why: string): ConfigResult => ({
    ok: false,
    problems: [{ path: file, message: `cannot read file (${why})` }],
  });
  const why = unreadableReason(file);
  if (why) return cannot(why);
  const { size } = statSync(file);
  if (size > MAX_CONFIG_BYTES)
    return {
      ok: false,
      problems: [{ path: file, message: `is ${size} bytes; a config is a small YAML file (is this the right file?)` }],
    };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return cannot(describeError(err));
  }
  return parseConfigText(text, { ...opts, file });
}

/** The error `langbiang start` and friends throw for a bad config; details.problems keeps the list. */
export function configError(file: string, problems: readonly ConfigProblem[]): LangbiangError {
  const unreadable =
    problems.length === 1 && problems[0]?.path === file && problems[0].message.startsWith('cannot read file');
  const head = unreadable ? '' : `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n`;
  return new LangbiangError(unreadable ? 'CONFIG_UNREADABLE' : 'CONFIG_INVALID', `${head}${formatProblems(problems)}`, {
    problems: [...problems],
  });
}

/** loadConfigFile for callers that want the config or a thrown LangbiangError. */
export function loadConfigOrThrow(
  file: string,
  opts: Omit<ParseConfigOptions, 'file'> = {},
): Extract<ConfigResult, { ok: true }> {
  const result = loadConfigFile(file, opts);
  if (!result.ok) throw configError(file, result.problems);
  return result;
}
