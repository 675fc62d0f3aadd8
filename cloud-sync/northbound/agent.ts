import type { SyncStatus } from '../agent.js';

/**
 * What the gateway shell holds of a sync agent, whatever it speaks: the native `SyncAgent` and
 * the standard-format agents (ThingsBoard, Sparkplug B) have this same public surface.
 */
export interface NorthboundAgent {
  /** starts connecting in the background; never waits for the broker */
  start(): Promise<void>;
  /** sends what is pending, says goodbye the format's way, disconnects */
  stop(): Promise<void>;
  /** new readings were committed: look now rather than at the next tick */
  wake(): void;
  status(): SyncStatus;
}

export type { SyncStatus };

/**
 * A device as the standard formats announce it (ThingsBoard attributes, Sparkplug DBIRTH): the
 * shell builds these from the config and the profiles, so cloud-sync needs neither.
 */
export interface NorthboundDevice {
  id: string;
  /** human name from the config */
  name?: string;
  zone?: string;
  profile: string;
  manufacturer?: string;
  model?: string;
  points: NorthboundPoint[];
}

export interface NorthboundPoint {
  name: string;
  unit?: string;
  /** the profile's value type: 'bit' (and coils, discrete inputs) are booleans, 'string' text, the rest numbers */
  kind: 'number' | 'boolean' | 'string';
  writable: boolean;
}
