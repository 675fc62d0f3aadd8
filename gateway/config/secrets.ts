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
    const text = (e.message ?? '').replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '');
    return `${e.code}: ${text}`;
  }
  return err instanceof Error ? err.message : String(err);
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

/** Replaces every `!file` value with the file's text (one trailing newline removed), in place. */
export function resolveFileRefs(data: unknown, baseDir: string): RawProblem[] {
  const problems: RawProblem[] = [];
  const visit = (node: unknown, path: PathSegment[]): unknown => {
    if (node instanceof FileRef) {
      const file = resolve(baseDir, node.path);
      try {
        return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        problems.push({ path, message: `cannot read !file ${node.path} (${reason(err)})` });
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
      if (why) problems.push({ path, message: `cannot read ${file} (${why})` });
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
