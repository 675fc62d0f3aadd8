export {
  type ApplyRequest,
  type ApplyResult,
  type ApplySource,
  type ApplyStatus,
  type ApplyTarget,
  ConfigApplier,
  type ConfigApplierOptions,
  DEFAULT_WATCH_MS,
  newApplyId,
  type Outcome,
} from './applier.js';
export { effectiveConfig } from './effective.js';
export { CONFIG_MESSAGE_VERSION, type ConfigMessage, parseConfigMessage } from './envelope.js';
export { REMOTE_CONFIG_DIR, RemoteConfigFiles, type RemoteConfigState } from './persist.js';
export { type Snapshot, snapshot, type WatchedGateway, watchProblems } from './watch.js';
