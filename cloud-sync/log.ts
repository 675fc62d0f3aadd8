/** The slice of a pino logger the agent uses (cloud-sync may not import the gateway's logger). */
export interface SyncLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLogger: SyncLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
