export { NgsiLdClient, type NgsiLdClientOptions, NgsiLdUnavailable, type RejectedEntity } from './client.js';
export {
  DEVICE_CONTEXT,
  deviceEntities,
  type EntityOptions,
  entityId,
  NGSI_LD_CORE_CONTEXT,
  type NgsiLdEntity,
  type NgsiLdGateway,
  type NgsiLdSites,
  type PointValue,
  toKeyValues,
} from './entities.js';
export { EntityStream } from './export.js';
export { NgsiLdOutput, type NgsiLdOutputOptions, type NgsiLdOutputStats } from './output.js';
export { type NgsiLdSource, openNgsiLdSource } from './source.js';
