import type { AuthContext } from '../auth/index.js';
import type { GatewayConfig } from '../config/index.js';
import type { CommandExecutor } from '../core/command.js';
import type { BusDriver, BusHealth } from '../core/driver.js';
import type { EventBus } from '../core/events.js';
import type { DeviceProfile } from '../core/point.js';
import type { History } from '../history/index.js';
import type { Logger } from '../log.js';
import type { ApplyStatus } from '../remote-config/applier.js';
import type { Store } from '../store/index.js';
import type { EditorSource } from './editor.js';
import type { PanelSettings } from './panel-settings.js';
import type { StaticFiles } from './static.js';

/** What the HTTP server needs of the gateway (app.ts's Gateway has it all). */
export interface HttpGateway {
  readonly config: GatewayConfig;
  readonly store: Store;
  readonly events: EventBus;
  readonly buses: ReadonlyMap<string, BusDriver>;
  health(): Record<string, unknown>;
  busHealth(): BusHealth[];
  /** the profiles the gateway polls with (loaded again from disk when absent) */
  readonly profiles?: ReadonlyMap<string, DeviceProfile>;
  /** the command router; until it is there, command routes answer 503 */
  readonly commands?: CommandExecutor | null;
  /** the MQTT sync agent, when sync is configured */
  readonly sync?: { status(): unknown } | null;
  /** Node-RED, when flows are enabled: the editor at /red/ is proxied to it */
  readonly flows?: EditorSource | null;
  /** local alarms, when the config has any (the panel's and console's banner) */
  readonly alarms?: { status(): ReadonlyArray<{ state: string; fault: boolean }> } | null;
  /** updates from the console's upload (gateway/update); until it is there, the upload answers 503 */
  readonly updates?: {
    status(): { busy: boolean; source: string | null; version: string | null };
    installLocal(file: string, source: 'console', actor: string): Promise<{ version: string; previous: string | null }>;
  } | null;
}

/**
 * The console's config: what runs, and changes through the one config-apply mechanism
 * (gateway/remote-config: validate → apply → watch → keep or roll back), whatever their source.
 */
export interface ConfigHost {
  /** the config file the gateway was started with; null when it cannot be edited (the built-in demo) */
  readonly file: string | null;
  /** the config text that runs, and where it comes from */
  running(): RunningConfig;
  /**
   * Validates at once (HttpError 422 with `problems`, 409 while another change runs) and answers
   * the change's id; the change itself starts once `sent` settles and goes on in the background.
   */
  apply(text: string, actor: string, sent: Promise<unknown>): { id: string } | Promise<{ id: string }>;
  /** the change in progress or the newest one; with an id, that change */
  status(id?: string): ApplyReport | null;
  readonly applying: boolean;
}

export interface RunningConfig {
  text: string;
  /** file: the config file; applied: a change kept after its watch; trial: a change under watch; demo */
  origin: 'file' | 'applied' | 'trial' | 'demo';
  /** who applied it and when (applied, trial) */
  by?: string;
  at?: string;
}

export type ApplyReport = ApplyStatus;

export interface HttpCounters {
  requests: Map<string, number>;
  loginFailures: number;
  sseClients: number;
}

export interface Deps {
  gw: HttpGateway;
  auth: AuthContext;
  settings: PanelSettings;
  history: History | null;
  log: Logger;
  configHost: ConfigHost | null;
  statics: StaticFiles;
  counters: HttpCounters;
  profiles(): ReadonlyMap<string, DeviceProfile>;
  /** the address the server listens on, for the setup code's log line */
  address(): string;
}
