import type { AuthContext } from '../auth/index.js';
import type { GatewayConfig } from '../config/index.js';
import type { CommandExecutor } from '../core/command.js';
import type { BusDriver, BusHealth } from '../core/driver.js';
import type { EventBus } from '../core/events.js';
import type { DeviceProfile } from '../core/point.js';
import type { History } from '../history/index.js';
import type { Logger } from '../log.js';
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
}

/** Applying a config: validate, write, restart the gateway's parts, roll back if they fail to start. */
export interface ConfigHost {
  /** the config file the gateway runs from; null when it cannot be edited (the built-in demo) */
  readonly file: string | null;
  readText(): string;
  /** validates and writes the new config, then restarts in the background; throws on invalid input */
  apply(text: string, actor: string): Promise<{ accepted: true }>;
  lastApply(): ApplyReport | null;
}

export interface ApplyReport {
  state: 'applying' | 'applied' | 'rolled_back' | 'failed';
  actor: string;
  startedAt: string;
  finishedAt?: string;
  error?: string;
}

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
