/** The types of the update API (gateway/update/index.ts re-exports them). */

import type { Logger } from '../core/log.js';
import type { EventRecorder } from '../core/outbox.js';

/** What the release being replaced was healthy with, so the new one must be too (recorded at apply). */
export interface HealthBaseline {
  /** devices in state `ok` under the running release */
  devices: string[];
  /** the city link was connected */
  sync: boolean;
}

/** Where releases live: installRoot/releases/<version>/, installRoot/current -> releases/<version> */
export interface UpdateContext {
  /** the gateway's data directory: pinned release keys (trust/release/), state (update/), the store */
  dataDir: string;
  /** the directory holding releases/, current and bin/langbiang-prestart */
  installRoot: string;
  log: Logger;
  /** in the running gateway: where `update` events go at once; without, they wait in update/events.jsonl */
  events?: EventRecorder;
  /** the running release's health, to be matched by the new one; without, the store and buses only */
  baseline?: HealthBaseline | (() => HealthBaseline | null | Promise<HealthBaseline | null>);
  /** a technician on site restoring an older release on purpose (never from the network) */
  allowDowngrade?: boolean;
  /** starts the new release may take before it is rolled back (default 3) */
  maxAttempts?: number;
  /** where the update came from, for the event: cli, console, usb, city */
  source?: string;
  /** the running version (default: the version of installRoot/current) */
  running?: string;
  /** the architecture of this machine as a bundle names it (default: from process.arch) */
  arch?: string;
  now?: () => number;
}

export interface BundleSummary {
  version: string;
  arch: string;
  keyName: string;
  /** the payload leaves node_modules out; the installed release's are reused */
  reusesModules: boolean;
  size: number;
}

/** The pending/last state a view shows. */
export interface UpdateStatus {
  running: string;
  previous: string | null;
  /** a release installed and not yet confirmed */
  pending?: { version: string; attempts: number };
  last?: { outcome: string; version: string; at: string; reason?: string };
}

/** The exit code with which a running gateway that has just switched `current` stops, so the
 *  supervisor (systemd Restart=) starts the new release. EX_TEMPFAIL: "try again". */
export const UPDATE_RESTART_EXIT_CODE = 75;
