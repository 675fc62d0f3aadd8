import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { PathSegment, RawProblem } from './problems.js';
import type { GatewayConfig } from './schema.js';
import { FileRef } from './yaml-source.js';

/**
 * Secrets never sit in the config itself: `*File` keys (and TLS files) name files, and any value
 * may be written `!file path` to take its text from a file. Both are checked at validate time so
 * a missing key file shows up on the bench, not at 3 a.m. on the first reconnect.
 */

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code) {
    // "ENOENT: no such file or directory, open '/x'" → "ENOENT: no such file or directory"; the
    // path (from the config, maybe from the network) is said once by the caller, shortened
    let text = (e.message ?? '').replace(/^[A-Z]+: /, '');
    const cut = text.search(/, [a-z]+ '/);
    if (cut >= 0) text = text.slice(0, cut);
    return `${e.code}: ${text.slice(0, 120)}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** A file name as a problem message says it: the end of a very long one. */
export function shortPath(file: string): string {
  return file.length <= 120 ? file : `…${file.slice(-100)}`;
}

/** Why a file cannot be read, or undefined when it can. */
export function unreadableReason(file: string): string | undefined {
  try {
    if (!statSync(file).isFile()) return 'not a regular file';
    accessSync(file, constants.R_OK);
    return undefined;
  } catch (err) {
    return reason(err);
  }
}

/**
 * Replaces every `!file` value with the file's text (one trailing newline removed), in place;
 * `fromFiles` gets the path of each value read from a file.
 */
export function resolveFileRefs(data: unknown, baseDir: string, fromFiles: PathSegment[][] = []): RawProblem[] {
  const problems: RawProblem[] = [];
  const visit = (node: unknown, path: PathSegment[]): unknown => {
    if (node instanceof FileRef) {
      const file = resolve(baseDir, node.path);
      try {
        const text = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
        fromFiles.push(path);
        return text;
      } catch (err) {
        problems.push({ path, message: `cannot read !file ${shortPath(node.path)} (${reason(err)})` });
        return undefined;
      }
    }
    if (Array.isArray(node)) {
      node.forEach((item, i) => {
        node[i] = visit(item, [...path, i]);
      });
    } else if (node !== null && typeof node === 'object') {
      const obj = node as Record<string, unknown>;
      for (const key of Object.keys(obj)) obj[key] = visit(obj[key], [...path, key]);
    }
    return node;
  };
  visit(data, []);
  return problems;
}

/** A config from the network or the console: every `!file` tag is a problem, and no file is read. */
export function refuseFileRefs(data: unknown): RawProblem[] {
  const problems: RawProblem[] = [];
  const visit = (node: unknown, path: PathSegment[]): void => {
    if (node instanceof FileRef) {
      problems.push({
        path,
        message: '!file is only allowed in the config file on the gateway, not in a config sent to it',
      });
    } else if (Array.isArray(node)) {
      for (const [i, item] of node.entries()) visit(item, [...path, i]);
    } else if (node !== null && typeof node === 'object')
      for (const [k, v] of Object.entries(node as Record<string, unknown>)) visit(v, [...path, k]);
  };
  visit(data, []);
  return problems;
}

/** A problem about a value read from a file never quotes it: the file may be a secret. */
export function withoutFileContent(problems: RawProblem[], fromFiles: readonly PathSegment[][]): RawProblem[] {
  if (fromFiles.length === 0) return problems;
  const under = (p: readonly PathSegment[], prefix: readonly PathSegment[]) =>
    prefix.length <= p.length && prefix.every((seg, i) => String(seg) === String(p[i]));
  return problems.map((problem) =>
    fromFiles.some((f) => under(problem.path, f))
      ? { path: problem.path, message: 'the text read from its !file is not valid here (not shown: it may be secret)' }
      : problem,
  );
}

/** Makes every path in the config absolute against baseDir (the working directory by default). */
export function resolveConfigPaths(config: GatewayConfig, baseDir: string): GatewayConfig {
  const abs = (p: string) => resolve(baseDir, p);
  const out: GatewayConfig = { ...config, gateway: { ...config.gateway, dataDir: abs(config.gateway.dataDir) } };
  if (config.gateway.profilesDir !== undefined) out.gateway.profilesDir = abs(config.gateway.profilesDir);
  if (config.sync) {
    const sync = { ...config.sync };
    if (sync.passwordFile !== undefined) sync.passwordFile = abs(sync.passwordFile);
    if (sync.thingsboard) sync.thingsboard = { ...sync.thingsboard, tokenFile: abs(sync.thingsboard.tokenFile) };
    if (sync.tls) {
      const tls = { ...sync.tls };
      for (const k of ['ca', 'cert', 'key'] as const) if (tls[k] !== undefined) tls[k] = abs(tls[k] as string);
      sync.tls = tls;
    }
    out.sync = sync;
  }
  return out;
}

/** Every file the config names must exist and be readable now; TLS cert and key come as a pair. */
export function checkSecretFiles(config: GatewayConfig, checkExistence: boolean): RawProblem[] {
  const problems: RawProblem[] = [];
  const sync = config.sync;
  if (!sync) return problems;
  const files: [PathSegment[], string | undefined][] = [
    [['sync', 'passwordFile'], sync.passwordFile],
    [['sync', 'thingsboard', 'tokenFile'], sync.thingsboard?.tokenFile],
    [['sync', 'tls', 'ca'], sync.tls?.ca],
    [['sync', 'tls', 'cert'], sync.tls?.cert],
    [['sync', 'tls', 'key'], sync.tls?.key],
  ];
  if (checkExistence) {
    for (const [path, file] of files) {
      if (file === undefined) continue;
      const why = unreadableReason(file);
      if (why) problems.push({ path, message: `cannot read ${shortPath(file)} (${why})` });
    }
  }
  if (sync.tls?.cert !== undefined && sync.tls.key === undefined) {
    problems.push({
      path: ['sync', 'tls', 'key'],
      message: 'required when tls.cert is set (the client key for that certificate)',
    });
  }
  if (sync.tls?.key !== undefined && sync.tls.cert === undefined) {
    problems.push({ path: ['sync', 'tls', 'cert'], message: 'required when tls.key is set' });
  }
  if (sync.tls && /^(mqtt|ws):/.test(sync.url)) {
    problems.push({
      path: ['sync', 'tls'],
      message: `set, but sync.url ${sync.url} is not encrypted (use mqtts:// or wss://)`,
    });
  }
  if (sync.passwordFile !== undefined && sync.username === undefined) {
    problems.push({ path: ['sync', 'username'], message: 'required when passwordFile is set' });
  }
  return problems;
}
