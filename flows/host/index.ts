export { type EditorTarget, proxyEditorRequest, proxyEditorUpgrade } from './editor-proxy.js';
export { FLOWS_PATHS } from './paths.js';
export type { FlowCommand, HistoryQuery } from './protocol.js';
export {
  type ExitReason,
  type FlowsLog,
  type FlowsState,
  type FlowsStatus,
  FlowsSupervisor,
  type FlowsSupervisorOptions,
  TOKEN_HEADER,
} from './supervisor.js';
