import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ReceiverStore } from '../../cloud-sync/receiver/index.js';
import { LangbiangError } from '../core/errors.js';
import { type EventExportRow, type ExportRow, formatEvents, writeExport } from '../export/index.js';
import { STORE_FILE, Store } from '../store/index.js';
import { parseTimeArg } from './output.js';

export interface ExportArgs {
  dataDir?: string;
  receiverDb?: string;
  gateway?: string;
  device?: string;
  point?: string;
  from?: string;
  to?: string;
  /** events (gaps, command audit, alarms, config changes) instead of readings */
  events?: boolean;
  kind?: string;
  format: 'csv' | 'jsonl' | 'ngsi-ld';
  gatewayConfigs?: string;
  context?: string;
}

/** the formats of readings and events as tables (ngsi-ld is written by its own module) */
type TableFormat = 'csv' | 'jsonl';

interface Range {
  from?: number;
  to?: number;
}

export async function runExport(o: ExportArgs): Promise<void> {
  if (o.receiverDb && o.dataDir) throw new LangbiangError('USAGE', 'give either --data-dir or --receiver-db, not both');
  if (!o.dataDir && !o.receiverDb) {
    throw new LangbiangError(
      'USAGE',
      'give --data-dir DIR (the gateway data directory) or --receiver-db URL (a receiver database)',
    );
  }
  if (o.gateway !== undefined && !o.receiverDb)
    throw new LangbiangError(
      'USAGE',
      "--gateway filters a receiver database (--receiver-db); a gateway's data directory holds only its own readings",
    );
  if (o.events && (o.device !== undefined || o.point !== undefined))
    throw new LangbiangError('USAGE', '--events exports events; --device and --point filter readings (use --kind)');
  if (!o.events && o.kind !== undefined) throw new LangbiangError('USAGE', '--kind goes with --events');
  const range: Range = {};
  try {
    if (o.from) range.from = parseTimeArg(o.from);
    if (o.to) range.to = parseTimeArg(o.to);
  } catch (err) {
    throw new LangbiangError('USAGE', (err as Error).message);
  }
  if (o.format === 'ngsi-ld') {
    await (await import('./export-ngsi-ld.js')).runNgsiLdExport(
      { ...o, from: range.from, to: range.to },
      process.stdout,
    );
    return;
  }
  if (o.gatewayConfigs || o.context)
    throw new LangbiangError('USAGE', '--gateway-configs and --context need --format ngsi-ld');
  if (o.receiverDb) {
    const { openReceiverStore } = await import('../../cloud-sync/receiver/index.js');
    const store = await openReceiverStore(o.receiverDb, { readonly: true });
    try {
      if (o.events) await exportReceiverEvents(store, o, range);
      else await exportReceiverReadings(store, o, range);
    } finally {
      await store.close();
    }
    return;
  }
  const dir = resolve(o.dataDir!);
  if (!existsSync(join(dir, STORE_FILE)))
    throw new LangbiangError('USAGE', `no gateway database in ${dir} (expected ${STORE_FILE})`);
  // Read-only: safe beside a running gateway (SQLite WAL readers never block the writer).
  const store = Store.open({ dataDir: dir, readonly: true });
  try {
    if (o.events) {
      process.stdout.write(formatEvents(gatewayEvents(store, o.kind, range), o.format, false));
      return;
    }
    if (o.device !== undefined) {
      // a typo must not look like "no readings in that hour": name what the store does hold
      const devices = [...new Set(store.latest().map((r) => r.device))].sort();
      if (!devices.includes(o.device))
        throw new LangbiangError(
          'USAGE',
          `--device ${o.device}: this store has no readings of that device (devices: ${devices.join(', ') || 'none yet'})`,
        );
    }
    const rows = store.iterate({ device: o.device, point: o.point, ...range });
    await writeExport(rows, o.format, process.stdout);
  } finally {
    store.close();
  }
}

/** Every event the gateway still holds, oldest first, in the time range and of the kind asked. */
function gatewayEvents(store: Store, kind: string | undefined, range: Range): EventExportRow[] {
  const out: EventExportRow[] = [];
  let after = 0;
  for (;;) {
    const page = store.eventsAfter(after, 1000);
    if (page.length === 0) return out;
    for (const e of page) if (inRange(e.ts, range) && (kind === undefined || e.kind === kind)) out.push(e);
    after = page[page.length - 1]!.id;
  }
}

function inRange(ts: number, r: Range): boolean {
  return (r.from === undefined || ts >= r.from) && (r.to === undefined || ts <= r.to);
}

/** A filter that matches nothing at all (not just in the time range) is a mistake worth a sentence. */
async function refuseUnknown(store: ReceiverStore, o: ExportArgs): Promise<void> {
  const any = async (q: { gateway?: string; device?: string }) => {
    for await (const page of store.readings({ ...q, pageSize: 1 })) return page.length > 0;
    return false;
  };
  if (o.gateway !== undefined && !(await any({ gateway: o.gateway })))
    throw new LangbiangError(
      'USAGE',
      `--gateway ${o.gateway}: this receiver database has no readings from that gateway`,
    );
  if (o.device !== undefined && !(await any({ gateway: o.gateway, device: o.device })))
    throw new LangbiangError(
      'USAGE',
      `--device ${o.device}: this receiver database has no readings of that device${o.gateway !== undefined ? ` from gateway ${o.gateway}` : ''} (device ids repeat across gateways: add --gateway to pick one)`,
    );
}

/** A receiver's readings, `gateway` first, ordered by gateway, epoch, seq (the export columns). */
async function exportReceiverReadings(store: ReceiverStore, o: ExportArgs, range: Range): Promise<void> {
  await refuseUnknown(store, o);
  let first = true;
  for await (const page of store.readings({ gateway: o.gateway, device: o.device, point: o.point, ...range })) {
    const rows: ExportRow[] = page.map((r) => ({
      gateway: r.gateway,
      seq: r.seq,
      device: r.device,
      point: r.point,
      ts: r.ts,
      value: r.value,
      quality: r.quality,
      ...(r.unit ? { unit: r.unit } : {}),
      // not carried to the city; the export does not print them
      mono: 0,
      bootId: '',
      synced: true,
    }));
    await writeExport(rows, o.format as TableFormat, process.stdout, { withGateway: true, header: first });
    first = false;
  }
  // an empty export still gets its CSV header
  if (first) await writeExport([], o.format as TableFormat, process.stdout, { withGateway: true });
}

/** A receiver's events (gaps, command audit, alarms…), `gateway,epoch` first. */
async function exportReceiverEvents(store: ReceiverStore, o: ExportArgs, range: Range): Promise<void> {
  const events = (await store.events({ gateway: o.gateway, kind: o.kind })).filter((e) => inRange(e.ts, range));
  process.stdout.write(formatEvents(events, o.format as TableFormat, true));
}
