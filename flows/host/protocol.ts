import type { CommandResult } from '../../gateway/core/command.js';
import type { GatewayEventRecord } from '../../gateway/core/outbox.js';
import type { StoredReading } from '../../gateway/core/reading.js';

/**
 * The IPC messages between the gateway (supervisor) and the Node-RED child (runner). Plain JSON
 * over the fork channel: the child never touches SQLite, the buses or the network of the city.
 */

/** What the runner needs to start Node-RED; sent once, over IPC, so secrets never sit in argv or env. */
export interface RunnerInit {
  t: 'init';
  userDir: string;
  flowFile: string;
  credentialSecret: string;
  /** the proxy puts `${proxyToken} ${user}` in the token header; anything else is refused */
  proxyToken: string;
  tokenHeader: string;
  host: string;
  port: number;
  httpAdminRoot: string;
  nodesDir: string;
  defaultFlowsFile: string;
  logLevel: string;
  gatewayId: string;
  /** load the core nodes that run programs or touch files (settings UNSAFE_NODE_FILES) */
  allowUnsafeNodes: boolean;
}

export interface HistoryQuery {
  device?: string;
  point?: string;
  from?: number;
  to?: number;
  limit?: number;
  order?: 'asc' | 'desc';
}

/** What flows may ask the gateway for. */
export interface FlowCommand {
  device: string;
  point: string;
  value: number | boolean | string;
  /** flow/node id, for the audit */
  actor?: string;
  /** idempotency key; the runner makes one when the flow gives none */
  id?: string;
  deadline?: number;
}

export type ToChild =
  | RunnerInit
  | { t: 'ping'; n: number }
  | { t: 'readings'; readings: StoredReading[] }
  | { t: 'events'; events: GatewayEventRecord[] }
  | { t: 'reply'; id: number; ok: true; result: unknown }
  | { t: 'reply'; id: number; ok: false; error: string };

export type FromChild =
  | { t: 'ready'; port: number }
  | { t: 'pong'; n: number; rss: number; heapUsed: number }
  /** devices whose readings the flows want; null = all of them */
  | { t: 'subscribe'; devices: string[] | null; events: boolean }
  | { t: 'command'; id: number; command: FlowCommand }
  | { t: 'history'; id: number; query: HistoryQuery }
  | { t: 'fatal'; msg: string };

export type { CommandResult };
