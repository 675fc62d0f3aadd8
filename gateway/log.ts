import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * The last lines the process logged, for the console's log tail (the journal is not readable by the
 * gateway user on every install). Lines are kept as written: already redacted JSON.
 */
export class LogRing {
  private readonly lines: string[] = [];
  constructor(private readonly size = 500) {}
  push(line: string): void {
    this.lines.push(line.endsWith('\n') ? line.slice(0, -1) : line);
    if (this.lines.length > this.size) this.lines.splice(0, this.lines.length - this.size);
  }
  tail(n = this.size): string[] {
    return this.lines.slice(-Math.max(0, Math.min(n, this.size)));
  }
}

export const logRing = new LogRing();

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
        paths: [
          'password',
          '*.password',
          'token',
          '*.token',
          'secret',
          '*.secret',
          'key',
          '*.key',
          'headers.cookie',
          'headers.authorization',
        ],
        censor: '[redacted]',
      },
    },
    teeToRing(pino.destination({ dest: opts.destination ?? 1, sync: false })),
  );
}

/** Every line written also goes to logRing; the destination keeps its own flush behaviour. */
function teeToRing<T extends { write(s: string): boolean }>(dest: T): T {
  const write = dest.write.bind(dest);
  dest.write = (s: string) => {
    logRing.push(s);
    return write(s);
  };
  return dest;
}

/** For CLI one-shots: warnings and errors only, on stderr. */
export function createQuietLogger(verbose = false): Logger {
  return createLogger({ level: verbose ? 'debug' : 'warn', destination: 2 });
}
