/**
 * Entry of the short-lived process `langbiang start` reads its config in (see start-config.ts):
 * argv = [config file, "demo" | "file", sync URL or ""]; the outcome goes back on fd 3, v8-serialized.
 * Nothing imports this module; running it does the work.
 */
import { writeSync } from 'node:fs';
import { serialize } from 'node:v8';
import { type LogRecord, prepareStartConfig, type StartConfigOutcome } from './start-config-load.js';

const [file, mode, syncUrl] = process.argv.slice(2);
const logs: LogRecord[] = [];
let outcome: StartConfigOutcome;
try {
  outcome = {
    ok: true,
    logs,
    ...(await prepareStartConfig(file!, mode === 'demo', logs, { syncUrl: syncUrl || undefined })),
  };
} catch (err) {
  const e = err as { code?: unknown; message?: unknown; details?: unknown };
  outcome = {
    ok: false,
    logs,
    error: {
      code: typeof e?.code === 'string' ? e.code : 'INTERNAL',
      message: typeof e?.message === 'string' ? e.message : String(err),
      langbiang: err instanceof Error && err.name === 'LangbiangError',
      ...(e?.details && typeof e.details === 'object' ? { details: e.details as Record<string, unknown> } : {}),
    },
  };
}
let buf: Buffer;
try {
  buf = serialize(outcome);
} catch {
  // details that cannot be cloned (a function somewhere): the message alone still says it all
  buf = serialize(outcome.ok ? outcome : { ...outcome, error: { ...outcome.error, details: undefined } });
}
let off = 0;
while (off < buf.length) off += writeSync(3, buf, off);
