export { ControlTables } from './control-tables.js';
export {
  MIGRATIONS,
  READ_VERSION,
  readVersionOf,
  SCHEMA_VERSION,
  type StoreVersions,
  storeVersions,
} from './schema.js';
export {
  CONFIRMED_CURSOR,
  type CorrectionOptions,
  EVENTS_CONFIRMED_CURSOR,
  EVENTS_CURSOR,
  FLAG_UNSYNCED,
  PAGE_SIZE,
  type QueryOptions,
  STORE_FILE,
  Store,
  type StoreOptions,
  type StoreStats,
  SYNC_CURSOR,
} from './store.js';
