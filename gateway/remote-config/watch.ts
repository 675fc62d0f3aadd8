import type { GatewayConfig } from '../config/index.js';
import type { BusHealth } from '../core/driver.js';

/** What the watch looks at in a running gateway. */
export interface WatchedGateway {
  busHealth(): BusHealth[];
  readonly sync?: { status(): { connected: boolean; lastAckAt: number | null } } | null;
}

/** How things stood before a change: the new config must do no worse. */
export interface Snapshot {
  /** devices that had answered (not offline, at least one good poll) */
  answering: Set<string>;
  /** devices the old config had at all */
  known: Set<string>;
  syncConnected: boolean;
}

export function snapshot(gw: WatchedGateway, config: GatewayConfig): Snapshot {
  const answering = new Set<string>();
  for (const bus of gw.busHealth()) {
    for (const d of bus.devices) if (d.state !== 'offline' && d.lastOkAt !== undefined) answering.add(d.device);
  }
  let syncConnected = false;
  try {
    syncConnected = gw.sync?.status().connected ?? false;
  } catch {
    syncConnected = false;
  }
  return { answering, known: new Set(config.devices.map((d) => d.id)), syncConnected };
}

/**
 * Why the new config is worse than the old one, after the watch window (empty: it is good):
 * - a bus of the new config is not open (a serial port that does not exist, a host that refuses);
 * - a device that answered before, or one the change added, has not answered since the change;
 * - sync worked before (or the change came over it) and is not working now.
 * A device that was already failing before the change does not count against it.
 */
export function watchProblems(
  gw: WatchedGateway,
  config: GatewayConfig,
  before: Snapshot,
  since: number,
  opts: { requireSync?: boolean } = {},
): string[] {
  const problems: string[] = [];
  const health = new Map(gw.busHealth().map((b) => [b.bus, b]));
  for (const bus of config.buses) {
    const h = health.get(bus.id);
    if (!h) problems.push(`bus ${bus.id} did not start`);
    else if (!h.open) problems.push(`bus ${bus.id} is not open${h.lastError ? ` (${h.lastError})` : ''}`);
  }
  const devices = new Map<string, { lastOkAt?: number; lastError?: string }>();
  for (const b of health.values()) for (const d of b.devices) devices.set(d.device, d);
  for (const dev of config.devices) {
    if (dev.enabled === false) continue;
    const mustAnswer = before.answering.has(dev.id) || !before.known.has(dev.id);
    if (!mustAnswer) continue;
    const d = devices.get(dev.id);
    if (!d || d.lastOkAt === undefined || d.lastOkAt < since) {
      problems.push(`device ${dev.id} has not answered since the change${d?.lastError ? ` (${d.lastError})` : ''}`);
    }
  }
  if (config.sync && (before.syncConnected || opts.requireSync)) {
    let ok = false;
    try {
      const s = gw.sync?.status();
      ok = !!s && (s.connected || (s.lastAckAt !== null && s.lastAckAt >= since));
    } catch {
      ok = false;
    }
    if (!ok) problems.push('sync to the city is not working with the new config');
  }
  return problems;
}
