import { formatTable } from './output.js';

/** `langbiang fleet`: every gateway the city hears from, from a receiver database. */
export async function runFleet(o: { receiverDb: string; json?: boolean }): Promise<void> {
  const { openReceiverStore } = await import('../../cloud-sync/receiver/index.js');
  const { fleetView } = await import('../../cloud-sync/receiver/fleet.js');
  const store = await openReceiverStore(o.receiverDb, { readonly: true });
  let fleet: Awaited<ReturnType<typeof fleetView>>;
  try {
    fleet = await fleetView(store);
  } finally {
    await store.close();
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ generatedAt: new Date().toISOString(), gateways: fleet }, null, 2)}\n`);
    return;
  }
  if (fleet.length === 0) {
    process.stdout.write('no gateway has reported to this receiver database yet\n');
    return;
  }
  const now = Date.now();
  const rows = fleet.map((g) => {
    const mark = g.watermarks[0];
    return [
      g.gateway,
      g.offlineReason ? `${g.state} (${g.offlineReason})` : g.state,
      ago(g.lastSeenAt, now),
      g.backlog,
      g.unconfirmed === null
        ? null
        : `${g.unconfirmed}${g.oldestUnconfirmedAgeS !== null ? ` (${g.oldestUnconfirmedAgeS}s)` : ''}`,
      g.confirm,
      mark ? `${mark.seq}/${mark.events}` : null,
      g.readings24h,
      g.configVersion,
      g.version,
    ];
  });
  process.stdout.write(
    `${formatTable(
      [
        'gateway',
        'state',
        'last seen',
        'backlog',
        'unconfirmed',
        'confirm',
        'acked seq/events',
        'readings 24h',
        'config',
        'version',
      ],
      rows,
    )}\n`,
  );
}

function ago(ms: number | null, now: number): string {
  if (ms === null) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return new Date(ms).toISOString();
}
