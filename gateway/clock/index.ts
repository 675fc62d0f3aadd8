export { ManualClock } from './manual-clock.js';
export {
  readBootId,
  SystemClock,
  type SystemClockOptions,
  TIMESYNCD_SYNCHRONIZED_FILE,
  timesyncdProbe,
  UNSYNCED_TIME_FLOOR_MS,
} from './system-clock.js';
export {
  type ClockStepInfo,
  ClockWatcher,
  type ClockWatcherOptions,
  type CorrectableStore,
  storeCorrection,
} from './watcher.js';
