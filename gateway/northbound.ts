import type { NorthboundAgent, NorthboundDevice } from '../cloud-sync/northbound/agent.js';
import type { GatewayConfig } from './config/index.js';
import type { Clock } from './core/clock.js';
import type { CommandExecutor } from './core/command.js';
import type { DeviceProfile } from './core/point.js';
import type { Logger } from './log.js';
import type { Store } from './store/index.js';
import { CONFIRMED_CURSOR, EVENTS_CONFIRMED_CURSOR, EVENTS_CURSOR, SYNC_CURSOR } from './store/index.js';

type SyncConfig = NonNullable<GatewayConfig['sync']>;

export interface StandardSyncParts {
  config: GatewayConfig;
  sync: SyncConfig;
  profiles: ReadonlyMap<string, DeviceProfile>;
  store: Store;
  commands: CommandExecutor;
  clock: Clock;
  log: Logger;
}

/** The devices as the standard formats announce them: config names and zones, profile points. */
export function northboundDevices(
  config: GatewayConfig,
  profiles: ReadonlyMap<string, DeviceProfile>,
): NorthboundDevice[] {
  const out: NorthboundDevice[] = [];
  for (const dev of config.devices) {
    if (dev.enabled === false) continue;
    const profile = profiles.get(dev.profile);
    if (!profile) continue;
    const only = dev.points ? new Set(dev.points) : null;
    out.push({
      id: dev.id,
      name: dev.name,
      zone: dev.zone,
      profile: profile.name,
      manufacturer: profile.manufacturer,
      model: profile.model,
      points: profile.points
        .filter((p) => !only || only.has(p.name))
        .map((p) => ({
          name: p.name,
          unit: p.unit,
          kind:
            p.type === 'string'
              ? 'string'
              : p.type === 'bit' || p.function === 'coil' || p.function === 'discrete'
                ? 'boolean'
                : 'number',
          writable: p.writable,
        })),
    });
  }
  return out;
}

/**
 * The agent of a standard format (sync.format thingsboard or sparkplug), loaded only when used.
 * Both read the same outbox cursors as the native agent: the cursor means "the northbound
 * destination has it", whichever format it speaks.
 */
export async function createStandardSyncAgent(p: StandardSyncParts): Promise<NorthboundAgent> {
  const { sync } = p;
  const common = {
    gatewayId: p.config.gateway.id,
    outbox: p.store,
    events: p.store,
    clock: p.clock,
    log: p.log.child({ part: 'sync', format: sync.format }),
    url: sync.url,
    clientId: sync.clientId,
    tls: sync.tls,
    batchMaxReadings: sync.batchMaxReadings,
    batchMaxBytes: sync.batchMaxBytes,
    batchMaxDelayMs: sync.batchMaxDelay,
    backlogRate: sync.backlogRate,
    cursorName: SYNC_CURSOR,
    eventsCursorName: EVENTS_CURSOR,
    confirmedCursorName: CONFIRMED_CURSOR,
    eventsConfirmedCursorName: EVENTS_CONFIRMED_CURSOR,
    devices: northboundDevices(p.config, p.profiles),
    commands: p.commands,
  };
  if (sync.format === 'thingsboard') {
    const { ThingsBoardAgent } = await import('../cloud-sync/northbound/thingsboard/agent.js');
    return new ThingsBoardAgent({
      ...common,
      tokenFile: sync.thingsboard?.tokenFile ?? '',
      acceptRpc: sync.thingsboard?.acceptRpc ?? false,
    });
  }
  const { SparkplugAgent } = await import('../cloud-sync/northbound/sparkplug/agent.js');
  return new SparkplugAgent({
    ...common,
    username: sync.username,
    passwordFile: sync.passwordFile,
    groupId: sync.sparkplug?.groupId ?? '',
    acceptCommands: sync.sparkplug?.acceptCommands ?? false,
    persist: () => p.store.flush(),
  });
}
