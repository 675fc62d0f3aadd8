import { resolve } from 'node:path';
import type { FlowsSupervisor } from '../flows/host/index.js';
import type { GatewayConfig } from './config/index.js';
import type { CommandExecutor } from './core/command.js';
import type { EventBus } from './core/events.js';
import type { Logger } from './log.js';
import { loadOrCreateSecret } from './secret-store.js';
import type { Store } from './store/index.js';

/**
 * Starts Node-RED beside the gateway (config `flows.enabled`). The flows module gets what it
 * needs injected — the event bus, the command router, the store's history and events — and
 * never touches the shell itself. Loaded lazily: a gateway without flows never imports it.
 */
export async function startFlowsHost(deps: {
  config: GatewayConfig;
  log: Logger;
  events: EventBus;
  commands: CommandExecutor;
  store: Store;
}): Promise<FlowsSupervisor> {
  const { FlowsSupervisor } = await import('../flows/host/index.js');
  const { config, store } = deps;
  const f = config.flows;
  const dataDir = resolve(config.gateway.dataDir);
  const supervisor = new FlowsSupervisor({
    dataDir,
    gatewayId: config.gateway.id,
    credentialSecret: loadOrCreateSecret(dataDir, 'node-red-credentials'),
    log: deps.log.child({ component: 'flows' }),
    events: deps.events,
    commands: deps.commands,
    history: (q) => store.query(q),
    recorder: store,
    eventSource: store,
    maxOldSpaceMb: Math.floor(f.maxHeap / (1024 * 1024)),
    maxRssBytes: f.maxRss,
    heartbeatTimeoutMs: f.heartbeatTimeout,
    startTimeoutMs: f.startTimeout,
    backoffInitialMs: f.restartDelay,
    backoffMaxMs: f.restartDelayMax,
    crashLoopCrashes: f.crashLoop.crashes,
    crashLoopWindowMs: f.crashLoop.window,
    crashLoopCooldownMs: f.crashLoop.cooldown,
    env: f.env,
    failsafe: f.failsafe,
    logLevel: config.log.level,
  });
  supervisor.start();
  return supervisor;
}
