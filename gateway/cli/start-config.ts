import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { deserialize } from 'node:v8';
import { describeError, type ErrorCode, LangbiangError } from '../core/errors.js';
import type { Logger } from '../log.js';
import {
  type LogRecord,
  prepareStartConfig,
  type StartConfig,
  type StartConfigOutcome,
  type StartOverrides,
} from './start-config-load.js';

const CHILD = fileURLToPath(new URL('./start-config-child.js', import.meta.url));

/**
 * Reads `langbiang start`'s config in a short-lived child process. Validating a config needs the
 * YAML parser, the zod schema and every device profile: ~20 MB of heap and code that a running
 * gateway never uses again, and that a Node process cannot unload. Done in a child, only the result
 * (the config and the profiles its devices use) reaches the gateway, whose RSS target is 64 MB on a
 * Pi. Errors and log lines come back as the in-process path gave them. If no child can be started
 * (no memory, no process slots), the config is read here instead.
 */
export async function loadStartConfig(
  file: string,
  demo: boolean,
  opts: StartOverrides = {},
): Promise<StartConfig & { logs: LogRecord[] }> {
  let outcome: StartConfigOutcome;
  try {
    outcome = await runChild(file, demo, opts);
  } catch (err) {
    if (!(err instanceof SpawnFailed)) throw err;
    const logs: LogRecord[] = [
      {
        level: 'warn',
        obj: { err: describeError(err.cause) },
        msg: 'config reader process not started; reading the config here',
      },
    ];
    return { logs, ...(await prepareStartConfig(file, demo, logs, opts)) };
  }
  if (outcome.ok) return outcome;
  const e = outcome.error;
  const error = e.langbiang ? new LangbiangError(e.code as ErrorCode, e.message, e.details) : new Error(e.message);
  (error as { logs?: LogRecord[] }).logs = outcome.logs;
  throw error;
}

/** Log lines of a failed load (a first-boot bundle that could not be imported, say), for the caller to print. */
export function logsOf(err: unknown): LogRecord[] {
  return (err as { logs?: LogRecord[] } | null)?.logs ?? [];
}

/** Replays the config reader's log calls into `log` (or `bootLog` for the first-boot bundle's). */
export function replayLogs(logs: readonly LogRecord[], log: Logger, bootLog: () => Logger): void {
  let boot: Logger | null = null;
  for (const r of logs) {
    if (r.boot && !boot) boot = bootLog();
    const target = r.boot && boot ? boot : log;
    target[r.level](r.obj, r.msg);
  }
}

class SpawnFailed extends Error {}

function runChild(file: string, demo: boolean, opts: StartOverrides): Promise<StartConfigOutcome> {
  return new Promise((resolve, reject) => {
    // execArgv is not passed on: an --inspect port or a preload is meant for the gateway itself
    const child = spawn(process.execPath, [CHILD, file, demo ? 'demo' : 'file', opts.syncUrl ?? ''], {
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
    });
    const chunks: Buffer[] = [];
    child.stdio[3]!.on('data', (b: Buffer) => chunks.push(b));
    child.once('error', (err) => reject(new SpawnFailed('spawn failed', { cause: err })));
    child.once('close', (code, signal) => {
      const buf = Buffer.concat(chunks);
      if (buf.length > 0) {
        try {
          resolve(deserialize(buf) as StartConfigOutcome);
          return;
        } catch {
          // fall through: a truncated answer is a crashed reader
        }
      }
      reject(
        new LangbiangError(
          'INTERNAL',
          `reading the config failed: the config reader process ended (${signal ?? `exit code ${code}`}) without an answer`,
        ),
      );
    });
  });
}
