export { DEFAULT_GROUP, Receiver, type ReceiverLogger, type ReceiverOptions, type ReceiverStats } from './receiver.js';
export {
  openReceiverStore,
  parseStoreUrl,
  type ReadingQuery,
  type ReceivedEvent,
  type ReceivedReading,
  type ReceiverStore,
  redactUrl,
} from './store.js';
