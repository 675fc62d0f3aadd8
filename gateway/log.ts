import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Logs go to stdout as JSON lines (journald and docker keep them; nothing is written under /).
 * Anything that looks like a secret is redacted at the logger, so a careless log call cannot leak it.
 */
export function createLogger(opts: { level?: string; name?: string; destination?: number } = {}): Logger {
  return pino(
    {
      name: opts.name ?? 'langbiang',
      level: opts.level ?? process.env.LANGBIANG_LOG_LEVEL ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['password', '*.password', 'token', '*.token', 'secret', '*.secret', 'key', '*.key', 'headers.cookie', 'headers.authorization'],
        censor: '[redacted]',
      },
    },
    pino.destination({ dest: opts.destination ?? 1, sync: false }),
  );
}

/** For CLI one-shots: warnings and errors only, on stderr. */
export function createQuietLogger(verbose = false): Logger {
  return createLogger({ level: verbose ? 'debug' : 'warn', destination: 2 });
}
