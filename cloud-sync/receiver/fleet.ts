import type { ReceiverStore, WatermarkRow } from './store.js';

/** One gateway as the city sees it: from its retained status and from what the database holds. */
export interface FleetGateway {
  gateway: string;
  /** `online`/`offline` from the retained status; `unknown` when none was received */
  state: 'online' | 'offline' | 'unknown';
  /** wall ms of the newest sign of life: a status or a stored reading, as the receiver got them */
  lastSeenAt: number | null;
  /** wall ms when the receiver got the status below */
  statusReceivedAt: number | null;
  /** the gateway's own time of that status (for an LWT: when the connection it closes began) */
  statusTs: number | null;
  /** `lwt` (connection lost) or `shutdown` (clean stop) on an offline status */
  offlineReason: string | null;
  /** software version the gateway reports */
  version: string | null;
  /** version of the last remote config the gateway applied (its `config` events), null when none */
  configVersion: number | null;
  /** readings stored on the gateway but not yet taken by the broker */
  backlog: number | null;
  /** readings stored on the gateway but not yet confirmed by the city */
  unconfirmed: number | null;
  oldestUnconfirmedAgeS: number | null;
  lastConfirmAt: number | null;
  /** `city` (end-to-end acks) or `broker` (PUBACK only) */
  confirm: string | null;
  /** readings the city got from it timed within the last 24 h */
  readings24h: number;
  /** newest reading time (gateway clock) within the last 24 h */
  lastReadingTs: number | null;
  /** end-to-end acknowledgement watermarks, per boot epoch of its store */
  watermarks: { epoch: string; seq: number; events: number; updatedAt: number }[];
}

/** Builds the fleet view; gateways are sorted by id. */
export async function fleetView(store: ReceiverStore, now = Date.now()): Promise<FleetGateway[]> {
  const [statuses, activity, marks, configEvents] = await Promise.all([
    store.statuses(),
    store.activity(now - 86_400_000),
    store.allWatermarks(),
    store.events({ kind: 'config' }),
  ]);
  const ids = new Set<string>([
    ...statuses.map((s) => s.gateway),
    ...activity.map((a) => a.gateway),
    ...marks.map((m) => m.gateway),
  ]);
  const statusOf = new Map(statuses.map((s) => [s.gateway, s]));
  const activityOf = new Map(activity.map((a) => [a.gateway, a]));
  // the newest applied config per gateway, by the gateway's event time
  const configOf = new Map<string, { ts: number; version: number }>();
  for (const e of configEvents) {
    const v = e.data.version;
    if (e.data.outcome !== 'applied' || typeof v !== 'number') continue;
    const prev = configOf.get(e.gateway);
    if (!prev || e.ts >= prev.ts) configOf.set(e.gateway, { ts: e.ts, version: v });
  }
  const out: FleetGateway[] = [];
  for (const gateway of [...ids].sort()) {
    const st = statusOf.get(gateway);
    const s = st?.status;
    const a = activityOf.get(gateway);
    const ownMarks = marks.filter((m) => m.gateway === gateway);
    // a watermark moves with every in-order commit: the last sign of life older than a day
    const seen = [st?.receivedAt, a?.lastReceivedAt, ...ownMarks.map((m) => m.updatedAt)].filter(
      (x): x is number => typeof x === 'number',
    );
    out.push({
      gateway,
      state: s?.state ?? 'unknown',
      lastSeenAt: seen.length ? Math.max(...seen) : null,
      statusReceivedAt: st?.receivedAt ?? null,
      statusTs: s?.ts ?? null,
      offlineReason: s?.state === 'offline' ? (s.reason ?? null) : null,
      version: str(s?.version),
      configVersion: configOf.get(gateway)?.version ?? null,
      backlog: num(s?.backlog),
      unconfirmed: num(s?.unconfirmed),
      oldestUnconfirmedAgeS: num(s?.oldestUnconfirmedAgeS),
      lastConfirmAt: num(s?.lastConfirmAt),
      confirm: str(s?.confirm),
      readings24h: a?.readings ?? 0,
      lastReadingTs: a?.lastReadingTs ?? null,
      watermarks: epochMarks(ownMarks),
    });
  }
  return out;
}

function epochMarks(rows: WatermarkRow[]): FleetGateway['watermarks'] {
  const byEpoch = new Map<string, FleetGateway['watermarks'][number]>();
  for (const r of rows) {
    const m = byEpoch.get(r.epoch) ?? { epoch: r.epoch, seq: 0, events: 0, updatedAt: 0 };
    if (r.stream === 'readings') m.seq = r.upto;
    else m.events = r.upto;
    m.updatedAt = Math.max(m.updatedAt, r.updatedAt);
    byEpoch.set(r.epoch, m);
  }
  // newest epoch first: the one the gateway runs now
  return [...byEpoch.values()].sort((x, y) => y.updatedAt - x.updatedAt);
}

// A status is the gateway's word, carried by a broker that is not a trust boundary: only values
// of the expected type are shown.
function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
function str(v: unknown): string | null {
  return typeof v === 'string' ? v.slice(0, 100) : null;
}
