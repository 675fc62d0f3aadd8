/**
 * cloud-sync logs through the project's one Logger (gateway/core/log.ts, which cloud-sync may
 * import); `SyncLogger` is that type under the name cloud-sync's files have always used.
 */
export { type Logger as SyncLogger, silentLogger } from '../gateway/core/log.js';
