/**
 * Updating a gateway in the field: signed release bundles, installed side by side, switched
 * atomically, confirmed by the new release itself or rolled back by the pre-start check
 * (docs/operations.md, "Updating gateways"). This is the API every way in uses: the technician's
 * `langbiang update apply FILE`, the console's upload, the USB stick and the city's MQTT order.
 */
export { applyUpdate, verifyBundle } from './apply.js';
export { baselineFromHealth, missingHealth } from './confirm.js';
export { installRootOf, packageVersion } from './layout.js';
export { requestUpdateRestart } from './restart.js';
export { readUpdateStatus } from './status.js';
export {
  type BundleSummary,
  type HealthBaseline,
  UPDATE_RESTART_EXIT_CODE,
  type UpdateContext,
  type UpdateStatus,
} from './types.js';
