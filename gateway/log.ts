import { createRequire } from 'node:module';
import { isatty } from 'node:tty';
import { type Logger, pino } from 'pino';

/**
 * The gateway's logger is pino's: the project's one Logger type (core/log.ts: debug, info, warn,
 * error with fields then message) plus what only the shell uses — child loggers, fatal, flush.
 * Every part outside the shell (cloud-sync, the receiver, the Node-RED host) takes core's Logger,
 * and gets this one.
 */
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

export type LogFormat = 'pretty' | 'json';

/**
 * How log lines look: `pretty` (one coloured line per event, for a person at a terminal) or `json`
 * (one JSON object per line, for journald, docker and log shippers). An explicit choice wins, then
 * LANGBIANG_LOG_FORMAT, then the destination: a terminal gets pretty, anything else JSON.
 */
export function logFormatFor(fd: number, choice?: string, env: NodeJS.ProcessEnv = process.env): LogFormat {
  const wanted = choice ?? env.LANGBIANG_LOG_FORMAT;
  if (wanted === 'pretty' || wanted === 'json') return wanted;
  return isatty(fd) ? 'pretty' : 'json';
}

/**
 * Logs go to stdout (journald or docker keep them; nothing is written under /), as JSON lines or,
 * on a terminal, pretty. Anything that looks like a secret is redacted at the logger, so a careless
 * log call cannot leak it; the console's log tail always gets the JSON line.
 */
export function createLogger(
  opts: { level?: string; name?: string; destination?: number; format?: LogFormat } = {},
): Logger {
  const fd = opts.destination ?? 1;
  const format = opts.format ?? logFormatFor(fd);
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
    format === 'pretty'
      ? prettyInto(fd, isatty(fd) || process.env.FORCE_COLOR !== undefined)
      : teeToRing(pino.destination({ dest: fd, sync: false })),
  );
}

/**
 * pino's own pretty printer (pino-pretty) in this process, not a worker thread: one line per event,
 * `HH:MM:ss.l LEVEL: message key=value …`. Loaded only when pretty is asked for.
 */
function prettyInto(fd: number, colorize: boolean) {
  const require = createRequire(import.meta.url);
  const pretty = require('pino-pretty') as typeof import('pino-pretty');
  const toLine = pretty.prettyFactory({
    colorize,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,name',
  });
  // sync: a person at a terminal reads as it happens, and nothing is lost on exit
  const dest = pino.destination({ dest: fd, sync: true });
  return {
    write(line: string): boolean {
      logRing.push(line);
      return dest.write(toLine(line));
    },
    flushSync: () => dest.flushSync(),
  };
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
  // stderr: pretty when a person reads it
  return createLogger({ level: verbose ? 'debug' : 'warn', destination: 2 });
}
