/**
 * The one logger type of the project: what every part logs through — an object of fields first,
 * then the message, at pino's four everyday levels. The gateway's own logger (gateway/log.ts, pino,
 * with redaction and the console's log tail) is one; the sync agent, the reference receiver and
 * the Node-RED host take this type, so that logging never makes them import the gateway's shell.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A Logger that drops everything: for parts run without one (tests, one-shot tools). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
