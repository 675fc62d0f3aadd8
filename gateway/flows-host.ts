import { resolve } from 'node:path';
import type { FlowsSupervisor } from '../flows/host/index.js';
import type { GatewayConfig } from './config/index.js';
import type { CommandExecutor } from './core/command.js';
import { describeError } from './core/errors.js';
import type { EventBus } from './core/events.js';
import { prepareFlowsBoundary } from './flows-boundary.js';
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
}): Promise<FlowsSupervisor | null> {
  const { FlowsSupervisor } = await import('../flows/host/index.js');
  const { config, store } = deps;
  const f = config.flows;
  const dataDir = resolve(config.gateway.dataDir);
  // the secret first: it is made 0600 before the boundary closes the rest of the data directory
  const credentialSecret = loadOrCreateSecret(dataDir, 'node-red-credentials');
  let runAs: { uid: number; gid: number } | undefined;
  try {
    runAs = f.user ? prepareFlowsBoundary(dataDir, f.user) : undefined;
  } catch (err) {
    // polling, storing and syncing go on without the flows
    deps.log.error({ err: describeError(err) }, 'flows not started');
    return null;
  }
  const supervisor = new FlowsSupervisor({
    dataDir,
    gatewayId: config.gateway.id,
    credentialSecret,
    ...(runAs ? { runAs: { uid: runAs.uid, gid: runAs.gid } } : {}),
    allowUnsafeNodes: f.allowUnsafeNodes,
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
